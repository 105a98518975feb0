"""CPU time and peak memory of process trees, read from /proc (Linux only, no dependencies)."""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if not Path(f"/proc/{current}").exists():
            continue
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pids: list[int]) -> None:
    """Start a new peak-RSS window (writing 5 to clear_refs resets VmHWM)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mib(pids: list[int]) -> float:
    """Sum over the processes of each one's peak resident set since the last reset."""
    return sum(_status_kib(pid, "VmHWM") for pid in pids) / 1024


def largest_peak_rss_mib(pids: list[int]) -> float:
    """The largest single process's peak resident set since the last reset."""
    return max((_status_kib(pid, "VmHWM") for pid in pids), default=0) / 1024


def rss_mib(pids: list[int]) -> float:
    return sum(_status_kib(pid, "VmRSS") for pid in pids) / 1024


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    return (sum(values[:8]) - idle - steal) / _TICK


def children_cpu_seconds() -> float:
    """CPU time of this process's finished (waited-for) children: the load generators."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Window:
    """CPU use of the server, the load generator and the whole machine over one measurement."""

    server_pids: list[int]
    server_cpu: float = 0.0
    load_cpu: float = 0.0
    machine_cpu: float = 0.0

    def __enter__(self) -> Window:
        self._server0 = cpu_seconds(self.server_pids)
        self._load0 = children_cpu_seconds()
        self._machine0 = machine_busy_seconds()
        reset_peak_rss(self.server_pids)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server_cpu = cpu_seconds(self.server_pids) - self._server0
        self.load_cpu = children_cpu_seconds() - self._load0
        self.machine_cpu = machine_busy_seconds() - self._machine0
        self.peak_rss_mib = peak_rss_mib(self.server_pids)
        self.largest_peak_rss_mib = largest_peak_rss_mib(self.server_pids)
