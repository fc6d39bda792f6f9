"""Reading what a task reports: its progress file and its results directory (reference §9.5).

The progress file is JSON ``{taskId?, percentComplete (1-100, non-decreasing), name?, metadata?,
lastUpdatedAt (RFC 3339)}``. A file that is missing, half-written or not such an object reads as
"no news" (the next poll sees the finished write). A result is reported once its size and mtime
stayed the same over two scans (so a file still being written is not taken early), and every
remaining file is reported at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["Progress", "ResultScanner", "read_progress"]

_FRACTION = re.compile(r"(\.\d+)")


@dataclass(frozen=True, slots=True)
class Progress:
    percent: int
    last_updated_ms: int
    raw: bytes


def _rfc3339_ms(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # RFC3339Nano has up to 9 fraction digits; datetime takes at most 6.
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return 0
    return int(parsed.timestamp() * 1000) if parsed.tzinfo else 0


def read_progress(path: Path) -> Progress | None:
    try:
        raw = path.read_bytes()
        document = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    percent = document.get("percentComplete")
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        return None
    return Progress(max(0, min(100, int(percent))), _rfc3339_ms(document.get("lastUpdatedAt")), raw)


class ResultScanner:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last: dict[str, tuple[int, int]] = {}
        self.reported: set[str] = set()

    def _files(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for root, _dirs, files in os.walk(self.directory):
            for name in files:
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found[path.relative_to(self.directory).as_posix()] = (stat.st_size, stat.st_mtime_ns)
        return found

    def scan(self, final: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """New results as (name, metadata); on ``final`` every unreported file."""
        current = self._files()
        ready = [n for n, s in current.items() if n not in self.reported and (final or self._last.get(n) == s)]
        self._last = current
        out: list[tuple[str, dict[str, Any]]] = []
        for name in sorted(ready):
            self.reported.add(name)
            out.append((name, self._metadata(name, current[name][0])))
        return out

    def _metadata(self, name: str, size: int) -> dict[str, Any]:
        digest = hashlib.sha256()
        try:
            with open(self.directory / name, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return {"sizeBytes": size}
        return {"sizeBytes": size, "sha256": digest.hexdigest()}
