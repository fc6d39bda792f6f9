"""``cfgate``: run a gateway (``serve``, ``worker``, ``demo``) and drive one like nvcf-cli does."""

from gateway.cli.root import cli, main

__all__ = ["cli", "main"]
