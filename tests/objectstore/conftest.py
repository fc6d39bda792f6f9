"""A real S3-compatible server (moto_server process) and a bucket on it, per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.objectstore import ObjectStoreConfig, S3Bucket
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server, s3_server


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
async def bucket(s3: S3Server) -> AsyncIterator[S3Bucket]:
    name = f"cfgate-{uuid.uuid4().hex[:12]}"
    client = S3Bucket(ObjectStoreConfig.parse(s3.url(name), ACCESS_KEY, SECRET_KEY))
    await client.create_bucket()
    yield client
    await client.aclose()
