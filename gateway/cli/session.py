"""A command's connection to its gateway: the state file, the admin token (refreshed when it is
about to expire) and the API keys, as ``ControlPlane`` and ``Invoker`` clients.

Like nvcf-cli, ``NVCF_TOKEN``, ``NVCF_API_KEY`` and ``NVCF_NVCT_API_KEY`` override the stored
credentials.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from gateway.cli.failures import CliFailure, ExitCode, from_client_error
from gateway.cli.output import Output
from gateway.cli.state import CliState
from gateway.client import ClientError, ControlPlane, Invoker

# Refresh the admin token when less than this is left, so no command starts with a dying token.
REFRESH_MARGIN_SECONDS = 120.0


def expiry_seconds(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


class Session:
    def __init__(self, state_path: Path, output: Output) -> None:
        self.state_path = state_path
        self.output = output
        self._state: CliState | None = None
        self._planes: list[ControlPlane] = []

    @property
    def state(self) -> CliState:
        if self._state is None:
            self._state = CliState.load(self.state_path)
        return self._state

    def _plane(self, token: str | None) -> ControlPlane:
        plane = ControlPlane(self.state.gateway, token, domain=self.state.domain)
        self._planes.append(plane)
        return plane

    def admin(self) -> ControlPlane:
        """The control plane with the admin JWT."""
        override = os.environ.get("NVCF_TOKEN")
        return self._plane(override or self.admin_token())

    def admin_token(self) -> str:
        state = self.state
        if state.admin_token_expires_at - time.time() > REFRESH_MARGIN_SECONDS:
            return state.admin_token
        try:
            minted = self._plane(None).mint_admin_token(state.bootstrap_secret)
        except ClientError as exc:
            failure = from_client_error(exc)
            raise CliFailure(
                f"the admin token expired and could not be refreshed ({failure}): run cfgate init",
                ExitCode.CREDENTIALS,
            ) from None
        state.admin_token = str(minted["value"])
        state.admin_token_expires_at = expiry_seconds(str(minted["expires_at"]))
        state.save(self.state_path)
        self.output.note("cfgate: admin token refreshed")
        return state.admin_token

    def function_key(self) -> str:
        key = os.environ.get("NVCF_API_KEY") or self.state.api_key
        if not key:
            raise CliFailure("no API key: run cfgate api-key generate (or set NVCF_API_KEY)", ExitCode.CREDENTIALS)
        return key

    def task_key(self) -> str:
        key = os.environ.get("NVCF_NVCT_API_KEY") or self.state.task_api_key
        if not key:
            raise CliFailure(
                "no task API key: run cfgate api-key generate --for task (or set NVCF_NVCT_API_KEY)",
                ExitCode.CREDENTIALS,
            )
        return key

    def with_function_key(self) -> ControlPlane:
        return self._plane(self.function_key())

    def with_task_key(self) -> ControlPlane:
        return self._plane(self.task_key())

    def invoker(self, poll_seconds: int | None, timeout: float) -> Invoker:
        return Invoker(
            self.state.gateway,
            self.function_key(),
            host=f"invocation.{self.state.domain}",
            poll_seconds=poll_seconds,
            max_wait_seconds=timeout,
        )

    def close(self) -> None:
        for plane in self._planes:
            plane.close()
