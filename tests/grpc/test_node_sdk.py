"""ZITADEL's Node SDK (@zitadel/client) against a real Tessera: gRPC and gRPC-Web transports.

The SDK and its transports are npm packages pinned in tests/node/package.json (lock file
committed); they are installed into tests/node/node_modules on first use. The script itself is
tests/node/sdk.test.mjs, run with node's built-in test runner.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ROOT, ServerProcess, running_server

NODE_DIR = ROOT / "tests" / "node"


def _installed() -> bool:
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    for name, version in wanted.items():
        manifest = NODE_DIR / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


def _install_node_packages() -> None:
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "node and npm are needed for the Node SDK test"
    # One install at a time, should pytest-xdist run several test processes.
    with (Path(tempfile.gettempdir()) / "tessera-node-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    assert _installed()


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    _install_node_packages()
    with running_server(tmp_path_factory.mktemp("node-sdk"), "sqlite") as server:
        yield server


def test_zitadel_node_sdk_over_grpc_and_grpc_web(node_server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "TESSERA_GRPC_URL": f"http://{node_server.grpc_target}",
           "TESSERA_HTTP_URL": node_server.url, "TESSERA_PAT": node_server.admin_pat}
    node = shutil.which("node")
    assert node
    done = subprocess.run([node, "--test", "--test-reporter=spec", "sdk.test.mjs"], cwd=NODE_DIR, env=env,
                          capture_output=True, text=True, timeout=180)
    report = f"{done.stdout}\n{done.stderr}\n--- server log ---\n{node_server.log()}"
    assert done.returncode == 0, report
    # Both transports ran: two tests each, none skipped.
    assert "gRPC (createServerTransport)" in done.stdout and "gRPC-Web (createClientTransport)" in done.stdout
    assert "pass 6" in done.stdout and "fail 0" in done.stdout, report
