"""Prometheus ``/metrics`` of the gateway (``--metrics-port``): what is counted, how it is read."""
