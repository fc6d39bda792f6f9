"""The cluster registry as the rest of the gateway sees it: the store plus revocation hooks.

Deleting a cluster revokes its credential (the row holding its hash is gone, so no new
``Register`` succeeds) and then runs ``revoke_hooks``: the gateway hangs the worker service's
``disconnect`` there, which ends the cluster's live sessions so their in-flight invocations are
redelivered by the dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.auth import cluster_credentials
from gateway.store.clusters import Cluster, ClusterRepository

RevokeHook = Callable[[Cluster], Awaitable[object]]


class ClusterRegistry:
    def __init__(self, repository: ClusterRepository) -> None:
        self.repository = repository
        self.revoke_hooks: list[RevokeHook] = []

    async def by_credential(self, credential: str) -> Cluster | None:
        if not cluster_credentials.well_formed(credential):
            return None
        return await self.repository.by_credential(cluster_credentials.credential_hash(credential))

    async def by_id(self, cluster_id: str) -> Cluster | None:
        """The cluster of that id in any account (a registry holds a handful)."""
        return next((c for c in await self.repository.all() if c.cluster_id == cluster_id), None)

    async def delete(self, cluster: Cluster) -> bool:
        if not await self.repository.delete(cluster.nca_id, cluster.cluster_id):
            return False
        for hook in self.revoke_hooks:
            await hook(cluster)
        return True
