"""A function version's ``rateLimit`` (NVCF's ``RateLimitDto``) as the tiers one caller is held to.

As NVCF's rate limiter composes them (its README, "How rate limits compose"):

* the **account tier**, exactly one of: ``perNcaIdRate[<caller's account>]`` if the map names the
  caller's account, else the global ``rateLimit`` unless the account is in ``exemptedNcaIds``
  (an exemption lifts the global rate only). Counted per calling account and function version;
* the **user tier**, in addition: ``perUserRate``, counted per caller (the credential's subject)
  within its account and version; a caller without a subject has no user tier.

Every applicable tier must have room. ``syncCheck`` is kept and returned but changes nothing
here: cfgate always checks before the request goes ahead (NVCF's ``syncCheck: true``); NVCF
without it lets a request through while its check runs in the background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.invocation.ratelimit import RateCheck


@dataclass(frozen=True, slots=True)
class RatePolicy:
    rate: str | None
    exempted: frozenset[str]
    per_account: Mapping[str, str]
    per_user: str | None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RatePolicy | None:
        """From a stored ``rateLimit`` (validated on write); None when it limits nothing."""
        if not spec:
            return None
        policy = cls(
            rate=spec.get("rateLimit") or None,
            exempted=frozenset(spec.get("exemptedNcaIds") or ()),
            per_account=dict(spec.get("perNcaIdRate") or {}),
            per_user=spec.get("perUserRate") or None,
        )
        return policy if policy.rate or policy.per_account or policy.per_user else None

    def checks(self, version_id: str, nca_id: str, subject: str) -> list[RateCheck]:
        found: list[RateCheck] = []
        account_rate = self.per_account.get(nca_id)
        if account_rate is None and nca_id not in self.exempted:
            account_rate = self.rate
        if account_rate:
            found.append(RateCheck(version_id, "nca:" + nca_id, account_rate))
        if self.per_user and subject:
            found.append(RateCheck(version_id, f"user:{nca_id}:{subject}", self.per_user))
        return found

    def describe(self, checks: list[RateCheck]) -> str:
        return " and ".join(("per-user rate " if c.key.startswith("user:") else "rate ") + c.rate for c in checks)
