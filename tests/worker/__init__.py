"""Tests of the worker agent (invoker/worker)."""
