"""The invocation hot path: pexec, status polling and direct (TLB) invocation, below Starlette."""
