"""IP address management on the stdlib ``ipaddress`` module: carving child prefixes.

Pure functions; the store calls them inside a transaction that holds the parent block's row lock,
so two concurrent carves of one block never see the same free space.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PrefixError(ValueError):
    """The prefix is not a network address of the stated length (host bits set, bad text)."""


def network(prefix: str, length: int) -> Network:
    """``prefix``/``length`` as a network; host bits must be zero (NICo's rule for IP blocks)."""
    try:
        net = ipaddress.ip_network(f"{prefix}/{length}", strict=False)
    except ValueError as exc:
        raise PrefixError(f"'{prefix}/{length}' is not a valid prefix") from exc
    if str(net.network_address) != str(ipaddress.ip_address(prefix)):
        raise PrefixError(f"prefix must be the network address {net.network_address} for length {length}")
    return net


def overlaps(candidate: Network, taken: Iterable[Network]) -> bool:
    return any(candidate.version == t.version and candidate.overlaps(t) for t in taken)


def carve(parent: Network, length: int, taken: Iterable[Network]) -> Network | None:
    """The lowest free child of ``parent`` with ``length``, or None when the block has no room."""
    if length < parent.prefixlen or length > parent.max_prefixlen:
        return None
    used = sorted((t for t in taken if t.version == parent.version), key=lambda n: int(n.network_address))
    step = 1 << (parent.max_prefixlen - length)
    start = int(parent.network_address)
    end = int(parent.broadcast_address)
    candidate = start
    for block in used:
        lo, hi = int(block.network_address), int(block.broadcast_address)
        if candidate + step - 1 < lo:
            break
        if hi >= candidate:
            # Next aligned start past this block.
            candidate = ((hi + 1 + step - 1) // step) * step
    if candidate + step - 1 > end:
        return None
    return (
        ipaddress.ip_network((candidate, length)) if parent.version == 4 else ipaddress.IPv6Network((candidate, length))
    )


def usage(parent: Network, taken: Iterable[Network]) -> dict[str, object]:
    """``IpBlockUsageStats``: addresses handed out and free, and the free prefixes."""
    children = [t for t in taken if t.version == parent.version and t.subnet_of(parent)]  # type: ignore[arg-type]
    acquired = sum(c.num_addresses for c in children)
    free: list[Network] = [parent]
    for child in children:
        nxt: list[Network] = []
        for f in free:
            if child.subnet_of(f):  # type: ignore[arg-type]
                nxt.extend(f.address_exclude(child))  # type: ignore[arg-type]
            else:
                nxt.append(f)
        free = nxt
    free.sort(key=lambda n: int(n.network_address))
    return {
        "availableIPs": parent.num_addresses - acquired,
        "acquiredIPs": acquired,
        "availablePrefixes": [str(f) for f in free],
        "acquiredPrefixes": len(children),
        "availableSmallestPrefixes": sum(f.num_addresses for f in free) // 4 if parent.version == 4 else 0,
    }
