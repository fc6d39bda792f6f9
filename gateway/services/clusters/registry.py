"""The cluster registry as the rest of the gateway sees it: the store plus revocation hooks.

Deleting a cluster revokes its credential (the row holding its hash is gone, so no new
``Register`` succeeds) and then runs ``revoke_hooks``: the gateway hangs the worker service's
``disconnect`` there, which ends the cluster's live sessions so their in-flight invocations are
redelivered by the dispatcher.

Updating a cluster so that where it may run work changes (``PLACEMENT_FIELDS``: its names, the
accounts it authorizes, the GPUs it offers) runs the same hooks: each worker was admitted under
the old terms when it registered, so its sessions end and the agent re-registers under the new
ones, where ``Register`` refuses what the cluster may no longer run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.auth import cluster_credentials
from gateway.store.clusters import Cluster, ClusterRepository

# (the cluster as it is now, why its sessions end)
RevokeHook = Callable[[Cluster, str], Awaitable[object]]
# The spec fields placement reads (``gateway.services.clusters.placement``, ``offers``).
PLACEMENT_FIELDS = ("clusterName", "clusterGroupName", "authorizedNCAIds", "gpus")


def placement_changed(before: Cluster, after: Cluster) -> bool:
    return any(before.spec.get(name) != after.spec.get(name) for name in PLACEMENT_FIELDS)


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
        await self._revoke(cluster, f"cluster {cluster.cluster_id} deleted")
        return True

    async def update(self, before: Cluster, after: Cluster) -> None:
        """Store ``after``; end the cluster's sessions when its placement terms changed."""
        await self.repository.update(after)
        if placement_changed(before, after):
            await self._revoke(after, f"cluster {after.cluster_id} changed where it may run work")

    async def _revoke(self, cluster: Cluster, reason: str) -> None:
        for hook in self.revoke_hooks:
            await hook(cluster, reason)
