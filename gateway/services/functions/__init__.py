"""The NVCF control plane on ``api.<domain>`` (``/v2/nvcf/...``), plus ``/v3/openapi``.

One module per area, each exporting an ``ENDPOINTS`` table; ``app`` assembles them.
"""
