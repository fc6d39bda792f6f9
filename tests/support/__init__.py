"""Test support: real servers used by tests and benchmarks."""
