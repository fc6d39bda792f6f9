"""Invocation queues, one per function version, behind the ``InvocationQueue`` protocol."""

from invoker.queues.base import InvocationQueue, QueuePosition

__all__ = ["InvocationQueue", "QueuePosition"]
