"""KV blobs in an S3-compatible object store (AWS S3, SeaweedFS, MinIO), shared by every API
replica and worker that points at the same bucket.

Keys are content addressed like the local store's paths (``<prefix>ab/abcdef...``), so the
race-free lifecycle of :mod:`memsvc.service.kv_blobs` works unchanged: every put and delete of
one digest happens under that digest's registry row lock in the shared database, and the store
only needs put/exists/delete/list.

Nothing is held whole in memory: uploads stream the verified local temporary file to the
bucket (one PUT below the multipart threshold, parts of ``multipart_chunk_bytes`` above it),
and :meth:`S3BlobStore.open` returns a seekable reader that streams one GET and re-issues a
ranged GET from wherever a reader seeks to.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from stores.blobs import BlobStore, check_digest

__all__ = ["S3BlobStore"]

log = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in _MISSING


class _RangedReader(io.RawIOBase):
    """One object as a seekable binary file: sequential reads stream one GET from the current
    position to the end; a seek drops it and the next read starts a ranged GET there."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._pos = 0
        # The first GET starts now, so a blob deleted after open() (its row gone meanwhile)
        # is still read from the response already under way, as an open local file would be.
        self._body: Any = None
        self._size = 0
        self._start(0)

    def _start(self, position: int) -> None:
        args = {"Bucket": self._bucket, "Key": self._key}
        if position:
            args["Range"] = f"bytes={position}-"
        try:
            response = self._client.get_object(**args)
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(f"s3://{self._bucket}/{self._key}") from exc
            raise
        if not position:
            self._size = int(response["ContentLength"])
        self._body = response["Body"]

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._pos:
            self._drop_body()
            self._pos = position
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        if self._body is None:
            self._start(self._pos)
        data = self._body.read(len(buffer))
        if not data:
            raise OSError(f"s3://{self._bucket}/{self._key}: ended at byte {self._pos}")
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3BlobStore(BlobStore):
    """Blobs as objects ``<prefix>ab/abcdef...`` in one bucket; temporary files stay local
    (uploads are received and verified on disk before :meth:`put_file` sends them)."""

    def __init__(
        self,
        *,
        bucket: str,
        tmp_root: Path,
        prefix: str = "kv/",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold_bytes: int = 16 << 20,
        multipart_chunk_bytes: int = 16 << 20,
        read_chunk_bytes: int = 4 << 20,
        connect_timeout_seconds: float = 5.0,
        read_timeout_seconds: float = 60.0,
        max_attempts: int = 4,
        create_bucket: bool = False,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix, self.region = bucket, prefix, region
        self._tmp_root = Path(tmp_root)
        self.read_chunk_bytes = read_chunk_bytes
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},  # no per-bucket DNS names on a private endpoint
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout_seconds,
            read_timeout=read_timeout_seconds,
            max_pool_connections=32,
            # Checksums only where S3 requires them: not every S3-compatible server
            # implements the newer flexible checksums (the digest is checked by us anyway).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold_bytes,
            multipart_chunksize=multipart_chunk_bytes,
            max_concurrency=4,
            use_threads=True,
        )
        if create_bucket:
            self.ensure_bucket()

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (another process creating it too is fine)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except Exception as exc:
            if not _missing(exc):
                raise
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(**args)

    @property
    def tmp_dir(self) -> Path:
        return self._tmp_root

    def key(self, digest: str) -> str:
        """The object key of a blob."""
        check_digest(digest)
        return f"{self.prefix}{digest[:2]}/{digest}"

    def put_file(self, path: Path, digest: str) -> None:
        key = self.key(digest)
        try:
            if not self.exists(digest):  # HEAD, then upload only what is absent
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    key,
                    ExtraArgs={"ContentType": "application/octet-stream"},
                    Config=self._transfer,
                )
        finally:
            Path(path).unlink(missing_ok=True)

    def open(self, digest: str) -> BinaryIO:
        raw = _RangedReader(self.client, self.bucket, self.key(digest))
        return io.BufferedReader(raw, buffer_size=self.read_chunk_bytes)  # type: ignore[return-value]

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` with one ranged GET (fewer at the end)."""
        if length <= 0:
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket,
                Key=self.key(digest),
                Range=f"bytes={start}-{start + length - 1}",
            )
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(digest) from exc
            if "InvalidRange" in str(exc):  # start at or past the end
                return b""
            raise
        with response["Body"] as body:
            return body.read()

    def exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except Exception as exc:
            if _missing(exc):
                return False
            raise
        return True

    def size(self, digest: str) -> int:
        """The stored blob's size in bytes (raises ``FileNotFoundError``)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(digest) from exc
            raise
        return int(head["ContentLength"])

    def delete(self, digest: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

    def digests(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                folder, _, digest = name.partition("/")
                if folder == digest[:2] and _is_digest(digest):
                    yield digest

    def remove_stale_tmp(self, max_age_seconds: float) -> int:
        """Local temporary files, and multipart uploads a process that died left unfinished
        in the bucket (their parts are stored, and billed, until aborted)."""
        removed = super().remove_stale_tmp(max_age_seconds)
        cutoff = datetime.now(UTC) - timedelta(seconds=max_age_seconds)
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        except Exception:  # a server without the listing: its own expiry rules apply
            log.warning("unfinished multipart uploads not listed", exc_info=True)
        return removed


def _is_digest(name: str) -> bool:
    try:
        check_digest(name)
    except ValueError:
        return False
    return True
