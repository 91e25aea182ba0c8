"""One real SeaweedFS S3 server for this folder's tests, and services whose KV blobs live in a
fresh bucket of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memsvc.config.blobs import BlobsConfig
from memsvc.settings import Settings
from tests.conftest import make_settings
from tests.seaweed import ACCESS_KEY, SECRET_KEY, S3Server, running_seaweedfs


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """``weed server -s3`` on loopback for the session (fails, never skips, without weed)."""
    yield from running_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))


@pytest.fixture
def bucket(seaweedfs: S3Server) -> str:
    return seaweedfs.new_bucket()


def s3_config(server: S3Server, bucket: str, **overrides: object) -> BlobsConfig:
    values: dict[str, object] = {
        "backend": "s3",
        "s3_endpoint_url": server.endpoint,
        "s3_bucket": bucket,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
    }
    values.update(overrides)
    return BlobsConfig(**values)


def s3_settings(
    data_dir: Path, database_url: str, server: S3Server, bucket: str, **overrides: object
) -> Settings:
    """Test settings (tests/conftest.py) with KV blobs in ``bucket``."""
    return make_settings(data_dir, database_url, blobs=s3_config(server, bucket, **overrides))
