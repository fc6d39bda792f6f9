"""Servers the bench measures or puts behind the gateway, each runnable as ``python -m``."""
