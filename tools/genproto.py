"""Regenerate ``src/tessera/gen`` from ``proto/`` (protobuf-py messages and Connect stubs).

Usage: ``python tools/genproto.py`` to regenerate, ``python tools/genproto.py --check`` to fail
when the committed code differs from what the protos produce.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "src" / "tessera" / "gen"


def _plugin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        sys.exit(f"{name} not found next to {sys.executable}; install the dev extras")
    return str(path)


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
        f"--plugin=protoc-gen-py={_plugin('protoc-gen-py')}",
        f"--plugin=protoc-gen-connectrpc={_plugin('protoc-gen-connectrpc')}",
        f"--py_out={out}", f"--connectrpc_out={out}", *protos,
    ]
    subprocess.run(cmd, check=True, cwd=PROTO_DIR)  # noqa: S603  # fixed argv: this interpreter and our .proto files
    (out / "__init__.py").write_text('"""Generated from proto/ by tools/genproto.py; never edit by hand."""\n')


def _differences(a: Path, b: Path) -> list[str]:
    diff: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        diff.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b, ignore=["__pycache__"]), "")
    return diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the generated code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gen"
        out.mkdir()
        generate(out)
        if args.check:
            stale = _differences(out, GEN_DIR) if GEN_DIR.exists() else ["(missing)"]
            if stale:
                print("generated code is stale; run python tools/genproto.py:", *stale, sep="\n  ")
                return 1
            print("generated code is up to date")
            return 0
        if GEN_DIR.exists():
            shutil.rmtree(GEN_DIR)
        shutil.copytree(out, GEN_DIR)
    print(f"generated {GEN_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
