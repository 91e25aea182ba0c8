"""The S3 blob store against a real SeaweedFS: multipart uploads streamed from the local file,
streamed and ranged reads, content-addressed keys, delete, listing, stale uploads aborted."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from memsvc.service.deps import build_blob_store
from stores.s3_blobs import S3BlobStore
from tests.integration.blobs.conftest import s3_settings
from tests.seaweed import S3Server

MiB = 1 << 20


def _store(server: S3Server, bucket: str, tmp_path: Path) -> S3BlobStore:
    settings = s3_settings(
        tmp_path / "data",
        "",
        server,
        bucket,
        multipart_threshold_bytes=5 * MiB,
        multipart_chunk_bytes=5 * MiB,
        read_chunk_bytes=256 * 1024,
    )
    store = build_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    return store


def _tmp_blob(store: S3BlobStore, body: bytes) -> tuple[Path, str]:
    path = store.new_tmp_file()
    path.write_bytes(body)
    return path, hashlib.sha256(body).hexdigest()


def test_put_read_range_delete(seaweedfs: S3Server, bucket: str, tmp_path: Path) -> None:
    store = _store(seaweedfs, bucket, tmp_path)
    body = os.urandom(12 * MiB + 123)  # above the threshold: three 5 MiB-at-most parts
    path, digest = _tmp_blob(store, body)
    assert not store.exists(digest)

    store.put_file(path, digest)
    assert not path.exists()  # the store took the file
    assert store.exists(digest) and list(store.digests()) == [digest]
    assert seaweedfs.keys(bucket) == [f"kv/{digest[:2]}/{digest}"]
    head = seaweedfs.client().head_object(Bucket=bucket, Key=store.key(digest))
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # a multipart upload
    assert store.size(digest) == len(body)

    with store.open(digest) as f:  # streamed in small reads
        got = b"".join(iter(lambda: f.read(300_000), b""))
    assert hashlib.sha256(got).hexdigest() == digest
    with store.open(digest) as f:  # seeks become ranged GETs
        f.seek(7 * MiB + 5)
        assert f.read(1000) == body[7 * MiB + 5 : 7 * MiB + 1005]
        f.seek(10)
        assert f.read(20) == body[10:30]
        f.seek(-7, os.SEEK_END)
        assert f.read() == body[-7:]
    assert store.read_range(digest, 5 * MiB - 3, 6) == body[5 * MiB - 3 : 5 * MiB + 3]
    assert store.read_range(digest, len(body) - 4, 100) == body[-4:]
    with store.open(digest) as f:
        copy = store.spool(f)
    assert copy.read_bytes() == body and copy.parent == store.tmp_dir
    copy.unlink()

    again, _ = _tmp_blob(store, body)  # the same bytes again: kept, the new file dropped
    store.put_file(again, digest)
    assert not again.exists() and seaweedfs.keys(bucket) == [store.key(digest)]

    store.delete(digest)
    store.delete(digest)  # absent is fine
    assert not store.exists(digest) and list(store.digests()) == []
    with pytest.raises(FileNotFoundError):
        store.open(digest)
    with pytest.raises(FileNotFoundError):
        store.read_range(digest, 0, 10)


def test_small_blob_single_put_and_bad_digest(
    seaweedfs: S3Server, bucket: str, tmp_path: Path
) -> None:
    store = _store(seaweedfs, bucket, tmp_path)
    path, digest = _tmp_blob(store, b"tiny container")
    store.put_file(path, digest)
    head = seaweedfs.client().head_object(Bucket=bucket, Key=store.key(digest))
    assert "-" not in head["ETag"].strip('"')  # one PUT below the threshold
    with store.open(digest) as f:
        assert f.read() == b"tiny container"
    with pytest.raises(ValueError, match="sha256"):
        store.exists("../../etc/passwd")
    # objects that are not blobs (another prefix, odd names) are not listed as blobs
    client = seaweedfs.client()
    client.put_object(Bucket=bucket, Key="other/x", Body=b"1")
    client.put_object(Bucket=bucket, Key="kv/zz/not-a-digest", Body=b"1")
    assert list(store.digests()) == [digest]


def test_stale_multipart_uploads_are_aborted(
    seaweedfs: S3Server, bucket: str, tmp_path: Path
) -> None:
    store = _store(seaweedfs, bucket, tmp_path)
    client = seaweedfs.client()
    key = store.key("ab" * 32)
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024
    )
    stale_file = store.new_tmp_file()
    os.utime(stale_file, (0, 0))
    assert store.remove_stale_tmp(3600) == 1  # the old local file; the upload is fresh
    assert store.remove_stale_tmp(0.000001) >= 1  # the upload is older than that
    listed = client.list_multipart_uploads(Bucket=bucket, Prefix=store.prefix)
    assert listed.get("Uploads", []) == []
