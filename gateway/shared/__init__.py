"""State shared by many gateway processes through Redis: cache invalidation across processes."""

from gateway.shared.bus import InvalidationBus

__all__ = ["InvalidationBus"]
