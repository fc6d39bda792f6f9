"""Embedded backing services, one package each (Starlette apps built from a ``Runtime``)."""
