"""The CLI's state file: gateway address, domain, account and credentials (like nvcf-cli's
``~/.nvcf-cli.state``). It holds secrets, so it is written owner-only (0600) and atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.cli.failures import CliFailure, ExitCode

STATE_FILE_ENV = "CFGATE_STATE_FILE"


def default_state_path() -> Path:
    return Path(os.environ.get(STATE_FILE_ENV) or Path.home() / ".cfgate-cli.state")


@dataclass
class CliState:
    gateway: str
    domain: str
    nca_id: str
    admin_token: str
    # Epoch seconds; the token is refreshed from the gateway shortly before this.
    admin_token_expires_at: float
    bootstrap_secret: str | None = None
    api_key: str | None = None
    api_key_id: str | None = None
    task_api_key: str | None = None
    task_api_key_id: str | None = None

    @classmethod
    def load(cls, path: Path) -> CliState:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise CliFailure(f"no state file at {path}: run cfgate init", ExitCode.CREDENTIALS) from None
        except (OSError, ValueError) as exc:
            raise CliFailure(
                f"state file {path} is unreadable ({exc}): run cfgate init", ExitCode.CREDENTIALS
            ) from None
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in names})
        except TypeError:
            raise CliFailure(f"state file {path} is incomplete: run cfgate init", ExitCode.CREDENTIALS) from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        # O_EXCL + 0600 from the first byte: the secrets are never readable by others, not even briefly.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.as_dict(), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
