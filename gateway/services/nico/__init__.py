"""NICo REST (NVIDIA Infra Controller, OpenAPI 1.6.0) served embedded on ``nico.<domain>``."""
