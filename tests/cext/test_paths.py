"""match_invocation_path: NVCF invocation routes, against both twins."""

from __future__ import annotations

from types import ModuleType

import pytest

from cext import hotpath_py as P

FID = "12345678-9abc-4def-8123-456789abcdef"
VID = "0fedcba9-8765-4321-8fed-cba987654321"
RID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
Result = tuple[int, str | None, str | None]
NONE = (P.ROUTE_NONE, None, None)
BAD = (P.ROUTE_BAD_ID, None, None)

OK_CASES: list[tuple[bytes, str, tuple[int, str | None, str | None]]] = [
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}", (P.ROUTE_PEXEC, FID, None)),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}", (P.ROUTE_PEXEC_VERSION, FID, VID)),
    (b"GET", f"/v2/nvcf/pexec/status/{RID}", (P.ROUTE_PEXEC_STATUS, RID, None)),
    (b"POST", f"/v2/nvcf/exec/functions/{FID}", (P.ROUTE_EXEC, FID, None)),
    (b"POST", f"/v2/nvcf/exec/functions/{FID}/versions/{VID}", (P.ROUTE_EXEC_VERSION, FID, VID)),
    (b"GET", f"/v2/nvcf/exec/status/{RID}", (P.ROUTE_EXEC_STATUS, RID, None)),
    # trailing slash, query string, case of the ids
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/", (P.ROUTE_PEXEC, FID, None)),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}/", (P.ROUTE_PEXEC_VERSION, FID, VID)),
    (b"GET", f"/v2/nvcf/pexec/status/{RID}/", (P.ROUTE_PEXEC_STATUS, RID, None)),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}?a=1&b=/x/y", (P.ROUTE_PEXEC, FID, None)),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/?", (P.ROUTE_PEXEC, FID, None)),
    (b"GET", f"/v2/nvcf/exec/status/{RID}?wait=1", (P.ROUTE_EXEC_STATUS, RID, None)),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID.upper()}", (P.ROUTE_PEXEC, FID, None)),
    (
        b"POST",
        f"/v2/nvcf/exec/functions/{FID.upper()}/versions/{VID.upper()}",
        (P.ROUTE_EXEC_VERSION, FID, VID),
    ),
    (b"GET", f"/v2/nvcf/pexec/status/{RID.upper()}", (P.ROUTE_PEXEC_STATUS, RID, None)),
]


@pytest.mark.parametrize(("method", "path", "expected"), OK_CASES)
def test_routes(hp: ModuleType, method: bytes, path: str, expected: Result) -> None:
    assert hp.match_invocation_path(method, path.encode()) == expected


NONE_CASES: list[tuple[bytes, str]] = [
    # wrong method (also with bad ids: the method is checked first)
    (b"GET", f"/v2/nvcf/pexec/functions/{FID}"),
    (b"PUT", f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}"),
    (b"post", f"/v2/nvcf/pexec/functions/{FID}"),
    (b"POST ", f"/v2/nvcf/pexec/functions/{FID}"),
    (b"", f"/v2/nvcf/pexec/functions/{FID}"),
    (b"POST", f"/v2/nvcf/pexec/status/{RID}"),
    (b"HEAD", f"/v2/nvcf/exec/status/{RID}"),
    (b"GET", "/v2/nvcf/pexec/functions/not-a-uuid"),
    (b"DELETE", "/v2/nvcf/exec/status/not-a-uuid"),
    # other paths (the control plane)
    (b"POST", ""),
    (b"POST", "/"),
    (b"GET", "/health"),
    (b"POST", "/v2/nvcf/functions"),
    (b"GET", f"/v2/nvcf/functions/{FID}"),
    (b"POST", f"/v2/nvcf/functions/{FID}/versions"),
    (b"POST", "/v2/nvcf/pexec/functions"),
    (b"POST", "/v2/nvcf/pexec/functions/"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions/"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}/x"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/version/{VID}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/{VID}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}//"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions/{VID}//"),
    (b"POST", "/v2/nvcf/exec/functions//versions/"),
    (b"GET", "/v2/nvcf/pexec/status"),
    (b"GET", "/v2/nvcf/pexec/status/"),
    (b"GET", f"/v2/nvcf/pexec/status/{RID}/x"),
    (b"GET", f"/v2/nvcf/pexec/status/{RID}/versions/{VID}"),
    (b"POST", f"/v2/nvcf/xexec/functions/{FID}"),
    (b"POST", f"/v2/nvcf/pexec/function/{FID}"),
    (b"POST", f"/v2/nvcf/pexec/Functions/{FID}"),
    (b"POST", f"/V2/nvcf/pexec/functions/{FID}"),
    (b"POST", f"/v2/NVCF/pexec/functions/{FID}"),
    (b"POST", f"/v1/nvcf/pexec/functions/{FID}"),
    (b"POST", f"v2/nvcf/pexec/functions/{FID}"),
    (b"POST", f"//v2/nvcf/pexec/functions/{FID}"),
    (b"POST", f"/v2//nvcf/pexec/functions/{FID}"),
    (b"POST", f"/v2/nvcf//pexec/functions/{FID}"),
    (b"POST", f"/x/v2/nvcf/pexec/functions/{FID}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}".replace("/", "%2F")),
    (b"POST", f"?/v2/nvcf/pexec/functions/{FID}"),
]


@pytest.mark.parametrize(("method", "path"), NONE_CASES)
def test_not_an_invocation_route(hp: ModuleType, method: bytes, path: str) -> None:
    assert hp.match_invocation_path(method, path.encode()) == NONE


BAD_ID_CASES: list[tuple[bytes, str]] = [
    (b"POST", "/v2/nvcf/pexec/functions/not-a-uuid"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID[:-1]}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}0"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID[:-1]}g"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID.replace('-', '')}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID.replace('-', '_')}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID[:8]}%2D{FID[9:]}"),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}/versions/latest"),
    (b"POST", f"/v2/nvcf/pexec/functions/latest/versions/{VID}"),
    (b"POST", "/v2/nvcf/exec/functions/x/versions/y"),
    (b"POST", "/v2/nvcf/exec/functions//versions//"),
    (b"POST", "/v2/nvcf/exec/functions//"),
    (b"GET", "/v2/nvcf/pexec/status/123"),
    (b"GET", "/v2/nvcf/exec/status/" + "z" * 36),
    (b"GET", f"/v2/nvcf/exec/status/{RID} "),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}".replace("-", "\u2010")),
    (b"POST", f"/v2/nvcf/pexec/functions/{FID}?".replace(FID[0], "\xe9")),
]


@pytest.mark.parametrize(("method", "path"), BAD_ID_CASES)
def test_bad_id(hp: ModuleType, method: bytes, path: str) -> None:
    assert hp.match_invocation_path(method, path.encode()) == BAD


def test_non_ascii_bytes_in_ids(hp: ModuleType) -> None:
    path = b"/v2/nvcf/pexec/functions/" + FID.encode()[:-1] + b"\xff"
    assert hp.match_invocation_path(b"POST", path) == BAD
    assert hp.match_invocation_path(b"POST", path + b"/versions/" + VID.encode()) == BAD


@pytest.mark.parametrize(("method", "path"), [("POST", b"/"), (b"POST", "/"), (None, b"/"), (b"POST", None)])
def test_rejects_non_bytes(hp: ModuleType, method: object, path: object) -> None:
    with pytest.raises(TypeError):
        hp.match_invocation_path(method, path)
