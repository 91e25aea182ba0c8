"""Content-addressed blob store for KV containers: a file's name is its sha256.

:class:`BlobStore` is what the service needs; :class:`LocalBlobStore` keeps blobs under a
directory (the default, inside the data directory); :class:`stores.s3_blobs.S3BlobStore` keeps
them in an S3-compatible bucket shared by every replica and worker. Uploads are first written to
:attr:`BlobStore.tmp_dir` (always local) and put in whole, so a reader never sees a partial
blob.

The store knows nothing of who uses a blob: the service orders every put and delete of one
digest under a database lock (``memsvc.service.kv_blobs``), so the store needs no atomic
"put unless present" or reference counts of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["BlobStore", "LocalBlobStore", "check_digest"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    """``digest`` when it is a sha256 hex digest (a blob's name and key); ValueError if not."""
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")
    return digest


class BlobStore(ABC):
    """Immutable blobs addressed by the sha256 of their bytes."""

    @property
    @abstractmethod
    def tmp_dir(self) -> Path:
        """A local directory for files being received or built before :meth:`put_file`."""

    @abstractmethod
    def put_file(self, path: Path, digest: str) -> None:
        """Take ownership of a finished local file whose sha256 is ``digest`` (the caller
        computed it); a blob already present is kept and the file removed."""

    @abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """The blob for reading (raises ``FileNotFoundError``)."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the blob (absent is fine)."""

    @abstractmethod
    def digests(self) -> Iterator[str]:
        """Every stored blob's digest (for the sweep that collects orphans)."""

    def local_path(self, digest: str) -> Path | None:
        """A local file holding the blob when there is one (served without a copy)."""
        return None

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of the blob from offset ``start`` (fewer at its end)."""
        with self.open(digest) as f:
            f.seek(start)
            return f.read(max(length, 0))

    def spool(self, file: BinaryIO) -> Path:
        """Copy an opened blob into a fresh temporary file, in bounded chunks (for readers that
        need a local file, e.g. a memory map); the caller removes it."""
        path = self.new_tmp_file()
        try:
            with path.open("wb") as out:
                shutil.copyfileobj(file, out, 1 << 20)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def new_tmp_file(self) -> Path:
        """A fresh, empty file in :attr:`tmp_dir` (the caller removes or puts it)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".part")
        os.close(fd)
        return Path(name)

    def remove_stale_tmp(self, max_age_seconds: float) -> int:
        """Delete temporary files not written to for ``max_age_seconds`` (left by a process
        that died mid-upload); returns how many."""
        if not self.tmp_dir.is_dir():
            return 0
        cutoff, removed = time.time() - max_age_seconds, 0
        for path in self.tmp_dir.glob("*.part"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # finished or removed meanwhile
                continue
        return removed


class LocalBlobStore(BlobStore):
    """Blobs under ``root/ab/abcdef...``; temporary files under ``root/tmp`` (same filesystem,
    so putting a file is one atomic rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def _path(self, digest: str) -> Path:
        return self.root / check_digest(digest)[:2] / digest

    def put_file(self, path: Path, digest: str) -> None:
        target = self._path(digest)
        if target.exists():
            Path(path).unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)

    def open(self, digest: str) -> BinaryIO:
        return self._path(digest).open("rb")

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()

    def delete(self, digest: str) -> None:
        self._path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for path in self.root.glob("??/*"):
            if _HEX64.fullmatch(path.name) and path.parent.name == path.name[:2]:
                yield path.name

    def local_path(self, digest: str) -> Path | None:
        return self._path(digest)
