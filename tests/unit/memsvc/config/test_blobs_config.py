"""MEMSVC_BLOBS__*: the S3 backend needs a bucket, and its secret survives the JSON the Celery
workers rebuild their settings from (while repr keeps it masked)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memsvc.config.blobs import BlobsConfig
from memsvc.settings import Settings


def test_s3_settings_survive_the_workers_json() -> None:
    settings = Settings(
        blobs=BlobsConfig(backend="s3", s3_bucket="b", s3_secret_access_key="s3cr3t", s3_prefix="x")
    )
    rebuilt = Settings.model_validate_json(settings.model_dump_json())
    assert rebuilt.blobs.s3_secret_access_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(rebuilt.blobs) and rebuilt.blobs.s3_prefix == "x/"


def test_s3_needs_a_bucket_and_local_is_the_default() -> None:
    assert Settings().blobs.backend == "local"
    with pytest.raises(ValidationError, match="S3_BUCKET"):
        BlobsConfig(backend="s3")
