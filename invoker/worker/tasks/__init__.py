"""The NVCT task worker (``cfgate worker --tasks``): runs assigned tasks through a launcher.

Imports only the worker protocol stubs and the standard library (never the gateway).
"""

from invoker.worker.tasks.agent import TaskWorkerAgent
from invoker.worker.tasks.config import TaskWorkerConfig

__all__ = ["TaskWorkerAgent", "TaskWorkerConfig"]
