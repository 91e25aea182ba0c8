"""``memsvc blobs``: the KV blob store (create the S3 bucket at start, e.g. in compose)."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from memsvc.service.deps import build_blob_store
from memsvc.settings import Settings

__all__ = ["blobs_app"]

console = Console(stderr=True)
blobs_app = typer.Typer(help="KV blob store (local directory or S3 bucket).", no_args_is_help=True)


@blobs_app.command("create-bucket")
def create_bucket(
    wait_seconds: float = typer.Option(120.0, help="How long to retry while the store starts."),
) -> None:
    """Create MEMSVC_BLOBS__S3_BUCKET when missing (idempotent); retries until the object
    store answers, bounded by --wait-seconds."""
    settings = Settings()
    if settings.blobs.backend != "s3":
        console.print("[red]error:[/red] MEMSVC_BLOBS__BACKEND is not s3: no bucket to create")
        raise typer.Exit(code=1)
    from stores.s3_blobs import S3BlobStore

    deadline = time.monotonic() + wait_seconds
    settings = settings.model_copy(
        update={"blobs": settings.blobs.model_copy(update={"s3_create_bucket": False})}
    )
    while True:
        try:
            store = build_blob_store(settings)
            assert isinstance(store, S3BlobStore)
            store.ensure_bucket()
            break
        except Exception as exc:  # not up yet: refused connections, no writable volume
            if time.monotonic() >= deadline:
                console.print(f"[red]error:[/red] bucket not created: {exc}")
                raise typer.Exit(code=1) from exc
            time.sleep(1.0)
    console.print(f"bucket {settings.blobs.s3_bucket} ready")
