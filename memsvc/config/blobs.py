"""Where KV blobs live (``MEMSVC_BLOBS__*``): the local directory (the embedded default) or an
S3-compatible object store shared by every API replica and worker."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_serializer, model_validator

__all__ = ["BlobsConfig"]

MiB = 1 << 20


class BlobsConfig(BaseModel):
    """``MEMSVC_BLOBS__<NAME>`` in the environment."""

    # "local": files under MEMSVC_KV__BLOB_DIR (default <data_dir>/blobs), one machine only.
    # "s3": objects in ``s3_bucket``, shared by every process that points at it.
    backend: Literal["local", "s3"] = "local"
    # S3 endpoint (SeaweedFS, MinIO, AWS...); empty: AWS's own for ``s3_region``.
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    # Key prefix inside the bucket (several deployments may share one bucket).
    s3_prefix: str = "kv/"
    s3_region: str = "us-east-1"
    # Empty: boto3's own chain (environment, instance profile...).
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    # Create the bucket at first use when it is missing (compose, tests); off in production
    # where the bucket is provisioned with its own policy.
    s3_create_bucket: bool = False
    # Uploads larger than the threshold go as a multipart upload of chunk-sized parts, each
    # streamed from the local temporary file (S3's smallest part is 5 MiB).
    multipart_threshold_bytes: int = Field(default=16 * MiB, ge=5 * MiB)
    multipart_chunk_bytes: int = Field(default=16 * MiB, ge=5 * MiB)
    # Bytes asked for per ranged GET when a reader seeks (sequential reads stream one GET).
    read_chunk_bytes: int = Field(default=4 * MiB, ge=64 * 1024)
    # Timeouts and retries of each S3 request.
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)

    @field_serializer("s3_secret_access_key", when_used="json")
    def _secret_in_json(self, value: SecretStr) -> str:
        # The Celery workers rebuild the settings from their JSON (consolidation.app): the
        # secret must survive it. repr() and model_dump() still mask it.
        return value.get_secret_value()

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> BlobsConfig:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("MEMSVC_BLOBS__BACKEND=s3 needs MEMSVC_BLOBS__S3_BUCKET")
        if self.s3_prefix and not self.s3_prefix.endswith("/"):
            self.s3_prefix += "/"
        return self
