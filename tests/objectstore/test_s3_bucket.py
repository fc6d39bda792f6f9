"""The S3 client against a real S3-compatible server process (moto_server over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.objectstore import ObjectStoreConfig, ObjectStoreError, S3Bucket, StoreFailure
from gateway.objectstore.config import ObjectStoreConfigError
from gateway.objectstore.results import S3ResultFiles
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server


async def test_put_get_list_delete_round_trip(bucket: S3Bucket, tmp_path: Path) -> None:
    await bucket.put_bytes("results/a b.zip", b"PK" + bytes(range(256)))
    big = tmp_path / "big"
    big.write_bytes(b"x" * (3 << 20))
    await bucket.put_file("assets/acct/big", big)
    assert await bucket.get_bytes("results/a b.zip") == b"PK" + bytes(range(256))
    assert await bucket.get_bytes("assets/acct/big") == b"x" * (3 << 20)
    assert [o.key for o in await bucket.list("assets/")] == ["assets/acct/big"]
    assert await bucket.exists("assets/acct/big")
    await bucket.delete("assets/acct/big")
    assert not await bucket.exists("assets/acct/big")
    assert await bucket.get_bytes("assets/acct/big") is None


async def test_results_sweep_deletes_only_older_objects(bucket: S3Bucket) -> None:
    files = S3ResultFiles(bucket)
    await files.put("r1", b"one")
    assert await files.sweep(0.0) == 0  # nothing stored before the epoch
    assert await files.get("r1") == b"one"
    assert await files.sweep(4102444800.0) == 1  # everything is older than 2100
    assert await files.get("r1") is None


async def test_a_store_that_is_down_is_unavailable_not_a_crash(s3: S3Server) -> None:
    config = ObjectStoreConfig.parse(s3.url("gone"), ACCESS_KEY, SECRET_KEY)
    s3.stop()
    client = S3Bucket(config)
    with pytest.raises(ObjectStoreError) as raised:
        await client.put_bytes("k", b"v")
    assert raised.value.kind is StoreFailure.UNAVAILABLE
    await client.aclose()


async def test_a_missing_bucket_is_refused(s3: S3Server) -> None:
    client = S3Bucket(ObjectStoreConfig.parse(s3.url("never-created"), ACCESS_KEY, SECRET_KEY))
    with pytest.raises(ObjectStoreError) as raised:
        await client.put_bytes("k", b"v")
    assert raised.value.kind is StoreFailure.REFUSED
    await client.aclose()


@pytest.mark.parametrize(
    ("url", "keys"),
    [
        ("http://bucket", ("a", "s")),
        ("s3://bucket?endpoint=ftp://x", ("a", "s")),
        ("s3://bucket?endpont=http://x", ("a", "s")),
        ("s3://bucket?endpoint=http://x", (None, "s")),
    ],
)
def test_bad_configuration_is_a_clear_error(url: str, keys: tuple[str | None, str | None]) -> None:
    with pytest.raises(ObjectStoreConfigError):
        ObjectStoreConfig.parse(url, *keys)


def test_prefix_and_defaults() -> None:
    config = ObjectStoreConfig.parse("s3://b/some/prefix/?region=eu-west-1", "a", "s")
    assert (config.bucket, config.prefix, config.endpoint) == (
        "b",
        "some/prefix/",
        "https://s3.eu-west-1.amazonaws.com",
    )
