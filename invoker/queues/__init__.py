"""Invocation queues, one per function version, behind the ``InvocationQueue`` protocol."""

from invoker.queues.base import DuplicateRequest, InvocationQueue, QueueEntry, QueuePosition
from invoker.queues.memory import MemoryQueue

__all__ = ["DuplicateRequest", "InvocationQueue", "MemoryQueue", "QueueEntry", "QueuePosition"]
