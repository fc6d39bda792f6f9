"""Regenerate gateway/services/nico/openapi.json, the document nico.<domain> serves: the official NICo
OpenAPI filtered to the operations gateway/services/nico/app.py implements and the components they
reference. Never edit the output; tests/nico/test_openapi_document.py fails when it drifts.

python scripts/nico_openapi.py [OFFICIAL_YAML] [--check]

OFFICIAL_YAML defaults to $NICO_OPENAPI, else shared/reference/nico-openapi.yaml beside the checkout.
--check writes nothing and exits 1 when the committed file differs from what would be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from gateway.services.nico.app import OPERATIONS
from gateway.services.nico.openapi import DOCUMENT, filtered_document, render

REPO = Path(__file__).resolve().parent.parent


def default_official() -> Path:
    return Path(os.environ.get("NICO_OPENAPI") or REPO.parent / "shared" / "reference" / "nico-openapi.yaml")


def generate(official: Path) -> bytes:
    return render(filtered_document(yaml.safe_load(official.read_text(encoding="utf-8")), OPERATIONS))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("official", nargs="?", type=Path, default=None)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    official = args.official or default_official()
    if not official.is_file():
        print(f"the official NICo OpenAPI document is not at {official} (pass it or set NICO_OPENAPI)", file=sys.stderr)
        return 2
    content = generate(official)
    if args.check:
        if DOCUMENT.read_bytes() != content:
            print(f"{DOCUMENT} is out of date: run python scripts/nico_openapi.py", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_bytes(content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
