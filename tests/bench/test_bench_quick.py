"""The quick benchmark runs end to end on SQLite, beside the fastapi-users peer.

Only completion is asserted: every scenario ran, saw no error, and the results were written.
Performance targets are read from bench/RESULTS.md, never checked by timed tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESSERA_SCENARIOS = {"noop", "token_auth", "get_session", "list_by_user", "update_session", "add_session",
                     "password_session"}
PEER_SCENARIOS = {"token_auth", "password_session"}


@pytest.mark.exclusive  # it loads the machine and needs it to itself: in parallel runs no other test runs meanwhile
@pytest.mark.timeout(600)
def test_quick_benchmark_completes_with_zero_errors(tmp_path: Path) -> None:
    out = tmp_path / "results"
    # Bounded: --quick runs each scenario for a few seconds; the first run also builds the peer's venv.
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--db", "sqlite",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=570)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    document = json.loads((out / "results.json").read_text())
    assert document["failures"] == []
    results = document["results"]
    assert {r["scenario"] for r in results if r["config"] == "sqlite"} == TESSERA_SCENARIOS
    assert {r["scenario"] for r in results if r["config"] == "peer"} == PEER_SCENARIOS
    for row in results:
        assert row["requests"] > 0, row
        assert row["errors"] == 0, row
    password = next(r for r in results if r["config"] == "sqlite" and r["scenario"] == "password_session")
    assert password["iterations_per_s"] > 0
    assert password["extra"]["probe"]["errors"] == 0
    assert document["meta"]["sqlite/10000"]["bytes_per_session"] > 0
    assert (out / "report.md").read_text().startswith("## Run of")
