"""The SIS placement rule on its own (``gateway.services.clusters.placement``): who consents to what."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.problems import BadRequest
from gateway.services.clusters.offers import group_id
from gateway.services.clusters.placement import Workload, check_workload, consented, runs
from gateway.store.clusters import Cluster
from tests.sis.helpers import gpu

OWNER, OTHER = "acct-owner", "acct-other"
OWN_ID = "11111111-1111-4111-8111-111111111111"
THEIRS_ID = "22222222-2222-4222-8222-222222222222"


def cluster(cluster_id: str, nca_id: str, name: str, group: str, **spec: Any) -> Cluster:
    spec.setdefault("gpus", [gpu("H100", "NCP.GPU.H100_1x")])
    return Cluster(cluster_id, nca_id, name, group, "hash", spec, 0, 0)


OWN = cluster(OWN_ID, OWNER, "rack-4", "east")
THEIRS = cluster(THEIRS_ID, OTHER, "rack-4", "east", authorizedNCAIds=[OWNER])
UNOFFERED = cluster(THEIRS_ID, OTHER, "rack-4", "east")


def workload(**placement: Any) -> Workload:
    return Workload.of(OWNER, {"gpu": "H100", "instanceType": "NCP.GPU.H100_1x", **placement})


@pytest.mark.parametrize(
    ("target", "placement", "expected"),
    [
        (OWN, {}, True),  # own cluster, nothing named: the GPU decides
        (OWN, {"clusters": ["RACK-4"]}, True),  # own cluster by name (case-insensitive)
        (OWN, {"clusters": [OWN_ID.upper()]}, True),  # by id
        (OWN, {"backend": "east"}, True),  # by group name
        (OWN, {"backend": group_id(OWNER, "east")}, True),  # by group id
        (OWN, {"clusters": [THEIRS_ID]}, False),  # another cluster named
        (THEIRS, {}, False),  # offered only: authorizedNCAIds is no consent of the owner
        (THEIRS, {"clusters": ["rack-4"]}, False),  # names do not reach across accounts
        (THEIRS, {"backend": "east"}, False),
        (THEIRS, {"clusters": [THEIRS_ID]}, True),  # offered and named by id: both consented
        (THEIRS, {"backend": group_id(OTHER, "east")}, True),  # by group id
        (UNOFFERED, {"clusters": [THEIRS_ID]}, False),  # named, never offered
    ],
)
def test_consent(target: Cluster, placement: dict[str, Any], expected: bool) -> None:
    assert consented(target, workload(**placement)) is expected


def test_runs_needs_the_gpu_and_instance_type_too() -> None:
    assert runs(OWN, workload())
    assert not runs(OWN, workload(instanceType="NCP.GPU.H100_8x"))
    assert not runs(OWN, Workload.of(OWNER, {"gpu": "B200", "instanceType": "B200_1x"}))
    assert runs(THEIRS, workload(clusters=[THEIRS_ID]))
    assert not runs(THEIRS, Workload.of(OWNER, {"gpu": "B200", "instanceType": "x", "clusters": [THEIRS_ID]}))


def test_check_workload_counts_only_usable_clusters() -> None:
    b200 = {"gpu": "B200", "instanceType": "B200_1x"}
    check_workload([], Workload.of(OWNER, b200))  # nothing anywhere
    check_workload([THEIRS, UNOFFERED], Workload.of(OWNER, b200))  # others' clusters change nothing
    check_workload([UNOFFERED], Workload.of(OWNER, {**b200, "clusters": [THEIRS_ID]}))  # not usable: no constraint
    with pytest.raises(BadRequest, match="GPU 'B200' is not offered"):
        check_workload([THEIRS], Workload.of(OWNER, {**b200, "clusters": [THEIRS_ID]}))  # consented: checked
    with pytest.raises(BadRequest, match="GPU 'B200' is not offered"):
        check_workload([OWN], Workload.of(OWNER, b200))  # own cluster: checked
    with pytest.raises(BadRequest, match=r"None of the clusters named \(elsewhere\)"):
        check_workload([OWN], workload(clusters=["elsewhere"]))
    check_workload([OWN, THEIRS], workload(clusters=[THEIRS_ID]))
