"""Prometheus metrics shared by the gateway and the worker agent: cheap counters and histograms
kept as plain Python numbers on the hot path, read into families only when scraped."""
