"""The ``memsvc`` command line: serve, database and index maintenance, tenants, benchmarks.

Commands stay thin: they build settings, call the service or SDK, print with rich, and turn a
:class:`~memsvc.errors.MemsvcError` into a message and a non-zero exit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from consolidation.dispatch import build_service
from memsvc.cli.bench import bench_app
from memsvc.cli.cartridge import cartridge_app
from memsvc.errors import MemsvcError
from memsvc.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

    from memsvc.service import MemoryService

__all__ = ["app", "main"]

console = Console(stderr=True)
app = typer.Typer(
    name="memsvc", help="memsvc: long-term memory for LLM applications.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
index_app = typer.Typer(help="Derived indexes (faiss, BM25).", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants and API keys.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(cartridge_app, name="cartridge")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.add_typer(tenant_app, name="tenant")

DataDir = Annotated[
    Path | None, typer.Option(help="Data directory (default: MEMSVC_DATA_DIR or ./.memsvc).")
]


@bench_app.command("consolidate")
def bench_consolidate(
    events: Annotated[int, typer.Option(help="Events to consolidate.")] = 2000,
    sessions: Annotated[int, typer.Option(help="Sessions (one job each).")] = 20,
    embedder: Annotated[str, typer.Option(help="minilm (real) or hash.")] = "minilm",
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    redis_url: Annotated[
        str | None, typer.Option(help="Broker (default: a private redis-server).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database (default: a temporary SQLite file).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
    quality: Annotated[
        bool, typer.Option(help="Score what is kept against a LoCoMo file (--data) instead.")
    ] = False,
    data: Annotated[
        Path | None, typer.Option(help="LoCoMo-schema JSON (with --quality).", exists=True)
    ] = None,
    conversations: Annotated[
        int | None, typer.Option(help="Only the first N conversations (with --quality).")
    ] = None,
) -> None:
    """Consolidation throughput (events/s) through a Celery worker, and in-process; with
    ``--quality --data FILE``: observation/event recall and entity checks against LoCoMo."""
    out = Console()
    if quality:
        if data is None:
            raise typer.BadParameter("--quality needs --data FILE", param_hint="--data")
        from memsvc.bench.consolidate_quality import render_quality, run_quality

        scored = run_quality(data, conversations=conversations, embedder=embedder, console=out)
        render_quality(scored, out, json_path)
        return
    from memsvc.bench.consolidate import render, run_consolidate_bench

    result = run_consolidate_bench(
        events,
        sessions=sessions,
        embedder=embedder,
        concurrency=concurrency,
        redis_url=redis_url,
        database_url=database_url,
        console=out,
    )
    render(result, out, json_path)


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    settings = Settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        update["data_dir"] = data_dir
    return settings.model_copy(update=update) if update else settings


def _fail(exc: MemsvcError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc.message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the REST API (embedded default: SQLite + faiss under the data directory)."""
    import uvicorn

    from api.main import create_app

    settings = _settings(data_dir, host=host, port=port)
    logging.basicConfig(level=settings.log_level)
    service = build_service(settings)
    try:
        if settings.sqlalchemy_url.startswith("sqlite"):
            key, created = service.tenants.ensure_local_key()
            state = "created" if created else "kept in"
            console.print(
                f"local API key ({state} {settings.data_dir / 'api_key'}): {key}", soft_wrap=True
            )
        service.warm_up()
        service.start_background()
        console.print(f"memsvc on http://{settings.host}:{settings.port} (docs at /docs)")
        uvicorn.run(create_app(settings, service=service), host=settings.host, port=settings.port)
    except MemsvcError as exc:
        raise _fail(exc) from exc
    finally:
        service.close()


def _celery(data_dir: Path | None) -> Celery:
    # The CLI is a process entry point (a composition root): it may start the workers, which
    # live in the consolidation package; memsvc's library code never imports them.
    from consolidation.app import create_celery

    settings = _settings(data_dir)
    logging.basicConfig(level=settings.log_level)
    if not settings.redis_url:
        console.print(
            "[red]error:[/red] MEMSVC_REDIS_URL is not set (the embedded default "
            "consolidates inside `memsvc serve`; no worker is needed)"
        )
        raise typer.Exit(code=1)
    return create_celery(settings)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes (or threads).")] = 2,
    pool: Annotated[str, typer.Option(help="prefork, threads or solo.")] = "prefork",
    data_dir: DataDir = None,
) -> None:
    """Run a Celery worker: consolidation jobs from Redis (MEMSVC_REDIS_URL)."""
    import os

    app_ = _celery(data_dir)
    # Each process gets its share of the cores for torch (see consolidation.tasks).
    processes = concurrency if pool == "prefork" else 1
    app_.conf.memsvc_threads_per_process = max(1, (os.cpu_count() or 1) // processes)
    app_.worker_main(
        ["worker", f"--concurrency={concurrency}", f"--pool={pool}", "--loglevel=INFO"]
    )


@app.command()
def beat(data_dir: DataDir = None) -> None:
    """Run the Celery beat: idle-session scans, stale-job re-dispatch and decay on a schedule."""
    app_ = _celery(data_dir)
    app_.start(["beat", "--loglevel=INFO"])


@app.command("ping-workers")
def ping_workers(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for answers.")] = 5.0,
    data_dir: DataDir = None,
) -> None:
    """Exit 0 when at least one Celery worker answers a ping (the compose health check)."""
    replies = _celery(data_dir).control.ping(timeout=timeout)
    if not replies:
        console.print("[red]error:[/red] no worker answered")
        raise typer.Exit(code=1)
    console.print(f"{len(replies)} worker(s) answered")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head", data_dir: DataDir = None) -> None:
    """Apply the Alembic migrations."""
    from stores.migrate import upgrade_database

    settings = _settings(data_dir)
    upgrade_database(settings.sqlalchemy_url, revision)
    console.print(f"database at {revision}")


@index_app.command("rebuild")
def index_rebuild(data_dir: DataDir = None) -> None:
    """Rebuild the faiss and BM25 indexes from SQL and snapshot them."""
    service = build_service(_settings(data_dir))
    try:
        count = service.rebuild_index()
    finally:
        service.close()
    console.print(f"indexed {count} memories")


@contextmanager
def _service(data_dir: Path | None) -> Iterator[MemoryService]:
    """The service over the configured database; a refusal becomes a message and exit 1."""
    service = build_service(_settings(data_dir))
    try:
        yield service
    except MemsvcError as exc:
        raise _fail(exc) from exc
    finally:
        service.close()


@tenant_app.command("create")
def tenant_create(
    name: str,
    tenant_id: Annotated[str | None, typer.Option("--id", help="Stable tenant id.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a tenant and print its first API key."""
    with _service(data_dir) as service:
        tenant = service.tenants.create(name, tenant_id)
        key = service.tenants.create_key(tenant.id, "cli")
    console.print(f"tenant {tenant.id}")
    typer.echo(key.key)


@tenant_app.command("list")
def tenant_list(data_dir: DataDir = None) -> None:
    """List the tenants."""
    with _service(data_dir) as service:
        tenants = service.tenants.list()
    for tenant in tenants:
        typer.echo(f"{tenant.id}\t{tenant.name}\t{tenant.created_at.isoformat()}")


GraceSeconds = Annotated[
    float, typer.Option(min=0, help="Keep the old key working this long (seconds).")
]


@tenant_app.command("keys")
def tenant_keys(tenant_id: str, data_dir: DataDir = None) -> None:
    """List a tenant's API keys (id, name, prefix, created, revoked)."""
    with _service(data_dir) as service:
        keys = service.tenants.list_keys(tenant_id)
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        typer.echo(f"{key.id}\t{key.name}\t{key.prefix}\t{key.created_at.isoformat()}\t{revoked}")


@tenant_app.command("add-key")
def tenant_add_key(
    tenant_id: str,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Issue another API key for a tenant and print it (shown only now)."""
    with _service(data_dir) as service:
        key = service.tenants.create_key(tenant_id, name)
    console.print(f"key {key.id}")
    typer.echo(key.key)


@tenant_app.command("revoke")
def tenant_revoke(
    tenant_id: str, key_id: str, grace_seconds: GraceSeconds = 0.0, data_dir: DataDir = None
) -> None:
    """Revoke an API key. Servers refuse it within MEMSVC_AUTH_CACHE_SECONDS (their cache)."""
    with _service(data_dir) as service:
        key = service.tenants.revoke_key(tenant_id, key_id, grace_seconds=grace_seconds)
        cache = service.settings.auth_cache_seconds
    console.print(f"key {key.id} revoked at {key.revoked_at}; refused everywhere {cache:g}s later")


@tenant_app.command("rotate")
def tenant_rotate(
    tenant_id: str,
    key_id: str,
    grace_seconds: GraceSeconds = 0.0,
    name: Annotated[str | None, typer.Option(help="Name of the new key.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Issue a new key and revoke the old one (after the grace period); prints the new key."""
    with _service(data_dir) as service:
        new, old = service.tenants.rotate_key(
            tenant_id, key_id, grace_seconds=grace_seconds, name=name
        )
    console.print(f"key {new.id} issued; key {old.id} revoked at {old.revoked_at}")
    typer.echo(new.key)


# Packages only the server extra installs: a command that needs one names the extra.
_SERVER_ONLY = {
    "alembic",
    "celery",
    "faiss",
    "fastapi",
    "kombu",
    "networkx",
    "numba",
    "numpy",
    "psycopg",
    "redis",
    "safetensors",
    "scipy",
    "sentence_transformers",
    "sqlalchemy",
    "torch",
    "transformers",
    "uvicorn",
}


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _SERVER_ONLY:
            raise
        console.print(
            f"[red]error:[/red] this command needs the server ({exc.name} is missing): "
            "pip install 'memsvc[server]'"
        )
        raise SystemExit(1) from exc
