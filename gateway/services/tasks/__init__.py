"""NVCT (tasks) on Host ``tasks.<domain>``: the ``/v1/nvct`` API (``app``) and the task scheduler."""
