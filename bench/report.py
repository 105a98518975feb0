"""Markdown report of a benchmark run: tables, ceilings, ratios, and issue 7's targets."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

Row = dict[str, Any]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _index(results: list[Row]) -> dict[tuple[str, int, str], Row]:
    return {(r["config"], r["sessions"], r["scenario"]): r for r in results}


def _scenario_table(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    noop = next((r for r in rows if r["scenario"] == "noop"), None)
    hashing = meta.get("hashing", {})
    out = ["| scenario | req/s | iterations/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MiB | ratio | "
           "server CPU µs/req | CPU server / wrk / other (idle before) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        ratio = "-"
        if r["scenario"] == "password_session" and hashing.get("ceiling_per_s") and r["iterations_per_s"]:
            ratio = f"{100 * r['iterations_per_s'] / hashing['ceiling_per_s']:.0f} % of hashing ceiling"
        elif noop and r["scenario"] not in ("noop", "password_session") and noop["rps"]:
            ratio = f"{100 * r['rps'] / noop['rps']:.0f} % of noop"
        out.append(f"| {r['scenario']} | {_fmt(r['rps'])} | {_fmt(r['iterations_per_s'], 1)} | {r['p50_ms']:.2f} | "
                   f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {_fmt(r['server_peak_rss_mib'])} | "
                   f"{ratio} | {_fmt(r.get('server_cpu_us_per_request'))} | {r['server_cpu_pct']:.0f} / "
                   f"{r['load_cpu_pct']:.0f} / {r['other_cpu_pct']:.0f} % "
                   f"({r.get('extra', {}).get('background_load_pct', 0):.0f} %) |")
        probe = r.get("extra", {}).get("probe")
        if probe:
            out.append(f"| ↳ get_session during it ({probe['connections']} paced connections) | {_fmt(probe['rps'])} "
                       f"| - | {probe['p50_ms']:.2f} | {probe['p95_ms']:.2f} | {probe['p99_ms']:.2f} | "
                       f"{probe['errors']} | | | | |")
    if hashing:
        out.append("")
        out.append(f"Hashing ceiling: {hashing['workers']} workers ÷ median argon2id verify "
                   f"{hashing['median_verify_ms']} ms = {hashing['ceiling_per_s']}/s"
                   + (f"; the same verifies on {hashing['workers']} threads at once managed "
                      f"{hashing['parallel_verifies_per_s']}/s." if "parallel_verifies_per_s" in hashing else "."))
    return out


def targets(doc: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(target, met?, evidence) for issue 7's targets; None when the run did not measure it."""
    results: list[Row] = doc["results"]
    meta: dict[str, Any] = doc["meta"]
    idx = _index(results)
    configs = sorted({r["config"] for r in results if r["config"] != "peer"})
    sizes = sorted({r["sessions"] for r in results})
    pg = [c for c in configs if c.startswith("postgres")]
    out: list[tuple[str, bool | None, str]] = []

    def rows(config: str, scenario: str) -> list[Row]:
        return [idx[(config, n, scenario)] for n in sizes if (config, n, scenario) in idx]

    def check(name: str, items: list[tuple[bool, str]]) -> None:
        if not items:
            out.append((name, None, "not measured"))
        else:
            out.append((name, all(ok for ok, _ in items), "; ".join(text for _, text in items)))

    def best(group: list[str], scenario: str) -> list[Row]:
        """Per N, the configuration of ``group`` (one process or several workers) that served most."""
        found = []
        for n in sizes:
            candidates = [idx[(c, n, scenario)] for c in group if (c, n, scenario) in idx]
            if candidates:
                found.append(max(candidates, key=lambda r: r["rps"]))
        return found

    sqlite = [c for c in configs if c.startswith("sqlite")]
    check("add_session ≥ 3 000/s on SQLite, p99 ≤ 50 ms",
          [(r["rps"] >= 3000 and r["p99_ms"] <= 50,
            f"N={r['sessions']:,}: {r['rps']:,.0f}/s p99 {r['p99_ms']:.1f} ms ({r['config']})")
           for r in best(sqlite, "add_session")])
    check("add_session ≥ 2 000/s on PostgreSQL",
          [(r["rps"] >= 2000, f"N={r['sessions']:,}: {r['rps']:,.0f}/s ({r['config']})")
           for r in best(pg, "add_session")])
    for scenario in ("token_auth", "get_session"):
        for config in configs:
            items = []
            for r in rows(config, scenario):
                noop = idx.get((config, r["sessions"], "noop"))
                share = r["rps"] / noop["rps"] if noop and noop["rps"] else 0.0
                items.append((r["rps"] >= 5000 and share >= 0.5,
                              f"N={r['sessions']:,}: {r['rps']:,.0f}/s = {100 * share:.0f} % of noop"))
            check(f"{scenario} ≥ 5 000/s and ≥ 50 % of noop ({config})", items)
    for config in configs:
        items = []
        for r in rows(config, "password_session"):
            ceiling = meta.get(f"{config}/{r['sessions']}", {}).get("hashing", {}).get("ceiling_per_s")
            probe = r.get("extra", {}).get("probe", {})
            share = (r["iterations_per_s"] or 0) / ceiling if ceiling else 0.0
            items.append((share >= 0.9 and probe.get("p99_ms", 1e9) <= 50,
                          f"N={r['sessions']:,}: {r['iterations_per_s']:.1f}/s = {100 * share:.0f} % of "
                          f"{ceiling}/s; get_session p99 {probe.get('p99_ms', float('nan')):.1f} ms"))
        check(f"password_session ≥ 90 % of hashing ceiling, get_session p99 ≤ 50 ms ({config})", items)
    if len(sizes) > 1:
        for config in configs:
            small, large = idx.get((config, sizes[0], "list_by_user")), idx.get((config, sizes[-1], "list_by_user"))
            if small and large:
                slower = small["rps"] / large["rps"] if large["rps"] else float("inf")
                check(f"list_by_user at {sizes[-1]:,} within 1.5x of {sizes[0]:,} ({config})",
                      [(slower <= 1.5, f"{small['rps']:,.0f}/s → {large['rps']:,.0f}/s ({slower:.2f}x)")])
    storage = [(m["bytes_per_session"] <= 1024, f"{key}: {m['bytes_per_session']} B")
               for key, m in sorted(meta.items()) if "bytes_per_session" in m]
    check("≤ 1 KB stored per session", storage)
    for config in configs:
        peaks = [(n, max((r.get("extra", {}).get("largest_process_peak_rss_mib", r["server_peak_rss_mib"])
                          for r in results if r["config"] == config and r["sessions"] == n), default=0.0))
                 for n in sizes]
        check(f"server RSS ≤ 200 MiB per process at every N ({config})",
              [(peak <= 200, f"N={n:,}: peak {peak:.0f} MiB") for n, peak in peaks if peak])
    for scenario, field in (("token_auth", "rps"), ("password_session", "iterations_per_s")):
        items = []
        for n in sizes:
            mine, peer = idx.get(("sqlite", n, scenario)), idx.get(("peer", n, scenario))
            if mine and peer and peer[field]:
                items.append((mine[field] > peer[field],
                              f"N={n:,}: {mine[field]:,.1f} vs {peer[field]:,.1f} = {mine[field] / peer[field]:.2f}x"))
        check(f"ahead of the fastapi-users peer on {scenario} (SQLite vs SQLite)", items)
    return out


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    s = doc["settings"]
    lines = [f"## Run of {doc['started']} ({doc.get('elapsed_s', 0):.0f} s)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}.  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".  ",
             f"Settings: {s['connections']} connections, wrk {s['threads']} thread(s), {s['warmup']} s warm-up + "
             f"{s['duration']} s measured per scenario; argon2id m={s['argon2_m']} KiB t={s['argon2_t']} "
             f"p={s['argon2_p']}; {', '.join(s['dbs'])}; N = {', '.join(f'{n:,}' for n in s['sizes'])}.", ""]
    if doc.get("failures"):
        lines += ["**Failures:**", *[f"- {f}" for f in doc["failures"]], ""]
    groups: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for r in doc["results"]:
        groups[(r["config"], r["sessions"])].append(r)
    for (config, n), rows in groups.items():
        meta = doc["meta"].get(f"{config}/{n}", {})
        title = f"### {config}, N = {n:,}"
        if "bytes_per_session" in meta:
            title += (f" — seeded in {meta['seed_seconds']} s, {meta['bytes_per_session']} B/session, "
                      f"idle RSS {meta.get('idle_rss_mib', 0):.0f} MiB")
        elif "bytes_per_token" in meta:
            title += f" (fastapi-users peer) — seeded in {meta['seed_seconds']} s, {meta['bytes_per_token']} B/token"
        lines += [title, "", *_scenario_table(rows, meta), ""]
    shares = [r["load_cpu_pct"] for r in doc["results"]]
    if shares:
        lines += [f"Load generator (wrk) CPU: {sum(shares) / len(shares):.1f} % of the machine on average, "
                  f"{max(shares):.1f} % at most (100 % = both cores).", ""]
    lines += ["### Targets (issue 7)", "", "| target | met | evidence |", "|---|---|---|"]
    for name, ok, evidence in targets(doc):
        mark = "-" if ok is None else ("met" if ok else "**missed**")
        lines.append(f"| {name} | {mark} | {evidence} |")
    return "\n".join(lines) + "\n"
