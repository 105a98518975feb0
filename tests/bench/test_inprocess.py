"""bench/inprocess.py seeds a database, calls the application in-process and reports a cost per call.

Only that it runs is asserted (every answer was HTTP 200, one figure per scenario); the figures
themselves are for bench/RESULTS.md. The callgrind mode takes minutes under valgrind and is not run here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(noop|token_auth|get_session): (\d+\.\d) µs per call, (\d+\.\d) µs CPU "
                  r"\((sqlite|postgres), 100 calls\)$")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_every_read_scenario_is_measured_in_process(db: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "inprocess.py"), "--db", db, "--sessions", "200",
                           "--warmup", "20", "--calls", "100"], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = [LINE.match(line) for line in done.stdout.splitlines()]
    assert all(found), done.stdout
    assert [(m[1], m[4]) for m in found if m] == [(s, db) for s in ("noop", "token_auth", "get_session")]
    assert all(float(m[2]) > 0 for m in found if m)


def test_unknown_scenarios_are_refused() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "inprocess.py"), "--scenarios", "noop,list"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown scenarios ['list']" in done.stderr
