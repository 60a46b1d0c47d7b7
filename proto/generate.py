"""Regenerate msjax/_proto/<name>_pb2.py from every proto/<name>.proto.

Usage (protoc comes from grpcio-tools, the `dev` extra; a throwaway venv is fine):
    python proto/generate.py [--python /tmp/protoc-venv/bin/python] [--check]

Each generated module is post-processed so that it
  * registers its descriptors in msjax's private pool (msjax._proto.POOL), so msjax and real
    MindSpore (whose checkpoint.proto / mind_ir.proto use the same file and message names) can be
    imported in one process without descriptor-pool clashes;
  * imports sibling modules as `from msjax._proto import x_pb2`;
  * carries `# msjax-proto-sha256: <hash of the .proto>` in its header, which
    tests/test_proto_current.py checks without needing protoc.
--check exits 1 if any module is missing or stale (no protoc needed).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
OUT_DIR = PROTO_DIR.parent / "msjax" / "_proto"
HASH_PREFIX = "# msjax-proto-sha256: "


def proto_hash(path: Path) -> str:
    """sha256 of the .proto text with line endings normalised."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def module_path(proto: Path) -> Path:
    return OUT_DIR / (proto.stem + "_pb2.py")


def recorded_hash(module: Path) -> str | None:
    if not module.exists():
        return None
    for line in module.read_text().splitlines()[:10]:
        if line.startswith(HASH_PREFIX):
            return line[len(HASH_PREFIX):].strip()
    return None


def stale(protos: list[Path]) -> list[str]:
    """Names of protos whose generated module is missing or out of date."""
    return [p.name for p in protos if recorded_hash(module_path(p)) != proto_hash(p)]


def postprocess(code: str, proto: Path, siblings: set[str]) -> str:
    code = code.replace("_descriptor_pool.Default()", "_msjax_proto.POOL")
    code = code.replace(
        "from google.protobuf import descriptor_pool as _descriptor_pool\n",
        "from google.protobuf import descriptor_pool as _descriptor_pool\n"
        "import msjax._proto as _msjax_proto\n",
    )

    def fix_import(m: re.Match) -> str:
        mod, alias = m.group(1), m.group(2)
        if mod[: -len("_pb2")] in siblings:
            return f"from msjax._proto import {mod} as {alias}"
        return m.group(0)

    code = re.sub(r"^import (\w+_pb2) as (\w+)$", fix_import, code, flags=re.M)
    header = (f"{HASH_PREFIX}{proto_hash(proto)}\n"
              f"# Generated from proto/{proto.name} by proto/generate.py. DO NOT EDIT.\n")
    return header + code


def generate(python: str, protos: list[Path]) -> None:
    siblings = {p.stem for p in protos}
    with tempfile.TemporaryDirectory() as tmp:
        include = subprocess.run(
            [python, "-c", "import grpc_tools, os; print(os.path.join("
             "os.path.dirname(grpc_tools.__file__), '_proto'))"],
            check=True, capture_output=True, text=True).stdout.strip()
        cmd = [python, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{include}",
               f"--python_out={tmp}", *[p.name for p in protos]]
        subprocess.run(cmd, check=True, cwd=PROTO_DIR)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for p in protos:
            code = (Path(tmp) / (p.stem + "_pb2.py")).read_text()
            module_path(p).write_text(postprocess(code, p, siblings))
            print(f"wrote {module_path(p).relative_to(PROTO_DIR.parent)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=os.environ.get("MSJAX_PROTOC_PYTHON", sys.executable),
                    help="a python with grpcio-tools installed (default: this one, or "
                         "$MSJAX_PROTOC_PYTHON)")
    ap.add_argument("--check", action="store_true", help="only report stale modules")
    args = ap.parse_args(argv)
    protos = sorted(PROTO_DIR.glob("*.proto"))
    if args.check:
        bad = stale(protos)
        for name in bad:
            print(f"stale: {name} (run python proto/generate.py)")
        return 1 if bad else 0
    generate(args.python, protos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
