"""Regenerate the Python stubs from the .proto sources: ``python -m protos.generate``.

The stubs are committed and never edited by hand; a test fails when they differ from a fresh
generation. Imports in the generated code are absolute from the repository root
(``protos.cfgate.worker.v1``), so the directory layout is the import path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent


def sources() -> list[Path]:
    return sorted((ROOT / "protos").rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every .proto into ``out_dir`` (as protos/...)."""
    include = Path(protoc.__file__).parent / "_proto"
    for source in sources():
        relative = source.relative_to(ROOT)
        args = [
            "grpc_tools.protoc",
            f"-I{ROOT}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(relative),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed for {relative}")


def main() -> int:
    import os

    os.chdir(ROOT)
    generate(ROOT)
    for source in sources():
        package = source.parent
        while package != ROOT:
            (package / "__init__.py").touch()
            package = package.parent
    print(f"generated stubs for {len(sources())} proto file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
