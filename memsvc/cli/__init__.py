"""The ``memsvc`` command line: serve, database and index maintenance, tenants, benchmarks.

Commands stay thin: they build settings, call the service or SDK, print with rich, and turn a
:class:`~memsvc.errors.MemsvcError` into a message and a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from consolidation.dispatch import build_service
from memsvc.cli.bench import bench_app
from memsvc.cli.blobs import blobs_app
from memsvc.cli.cartridge import cartridge_app
from memsvc.cli.mcp import mcp_command
from memsvc.errors import MemsvcError
from memsvc.observability.logs import configure_logging
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
app.add_typer(blobs_app, name="blobs")
app.add_typer(cartridge_app, name="cartridge")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.add_typer(tenant_app, name="tenant")
app.command("mcp")(mcp_command)

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
    workers: Annotated[
        int, typer.Option(help="API processes (uvicorn workers); metrics: docs/operations.md.")
    ] = 1,
    data_dir: DataDir = None,
) -> None:
    """Run the REST API (embedded default: SQLite + faiss under the data directory)."""
    import uvicorn

    from api.main import create_app

    settings = _settings(data_dir, host=host, port=port)
    configure_logging(settings.log_level, settings.log.format)
    _fresh_metrics_dir()  # before any process of this server writes its samples
    service = build_service(settings)
    try:
        if settings.sqlalchemy_url.startswith("sqlite"):
            key, created = service.tenants.ensure_local_key()
            state = "created" if created else "kept in"
            console.print(
                f"local API key ({state} {settings.data_dir / 'api_key'}): {key}", soft_wrap=True
            )
        if workers > 1:
            service.close()  # migrated, key made: each worker process builds its own
            _serve_workers(settings, data_dir, workers)
            return
        service.warm_up()
        service.start_background()
        console.print(f"memsvc on http://{settings.host}:{settings.port} (docs at /docs)")
        uvicorn.run(
            create_app(settings, service=service),
            host=settings.host,
            port=settings.port,
            log_config=None,  # ours (configure_logging): JSON lines
        )
    except MemsvcError as exc:
        raise _fail(exc) from exc
    finally:
        service.close()


def _fresh_metrics_dir() -> bool:
    """Empty ``PROMETHEUS_MULTIPROC_DIR`` before the processes start: counts of a previous
    run's processes must not be summed in. This process's own files stay (it opened them
    when its metrics were defined, on import). False when it is not set."""
    import os

    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not metrics_dir:
        return False
    directory = Path(metrics_dir)
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for path in directory.glob("*.db"):
        if not path.name.endswith(own):
            path.unlink(missing_ok=True)
    return True


def _serve_workers(settings: Settings, data_dir: Path | None, workers: int) -> None:
    """``workers`` uvicorn processes, each with its own service (``memsvc.cli.asgi``)."""
    import os

    import uvicorn

    if data_dir is not None:  # the worker processes read their settings from the environment
        os.environ["MEMSVC_DATA_DIR"] = str(data_dir)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        console.print(
            "[yellow]warning:[/yellow] PROMETHEUS_MULTIPROC_DIR is not set: each worker's "
            "/metrics counts only its own requests"
        )
    console.print(f"memsvc on http://{settings.host}:{settings.port}, {workers} workers")
    uvicorn.run(
        "memsvc.cli.asgi:app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
    )


def _celery(data_dir: Path | None) -> Celery:
    # The CLI is a process entry point (a composition root): it may start the workers, which
    # live in the consolidation package; memsvc's library code never imports them.
    from consolidation.app import create_celery

    settings = _settings(data_dir)
    configure_logging(settings.log_level, settings.log.format)
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
    _fresh_metrics_dir()
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
    """Rebuild the faiss and BM25 indexes from SQL and snapshot them (partitions on demand:
    drop what is loaded; each is read from SQL when next searched)."""
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


def _progress_bar(label: str) -> tuple[Progress, Callable[[str, int], None]]:
    """A rich progress display and the callback the export and import report to."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed} rows"),
        console=console, transient=False,
    )  # fmt: skip
    tasks: dict[str, TaskID] = {}

    def report(member: str, rows: int) -> None:
        if member not in tasks:
            tasks[member] = progress.add_task(f"{label} {member}", total=None)
        progress.update(tasks[member], completed=rows)

    return progress, report


@app.command("export")
def export_cmd(
    archive: Annotated[Path, typer.Argument(help="The archive to write (a .zip).")],
    tenant_id: Annotated[str, typer.Option("--tenant", help="The tenant to export.")],
    user_id: Annotated[
        str | None, typer.Option("--user", help="Only this user of the tenant.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Export a tenant (or one user of it) to a checksummed archive (docs/export-format.md)."""
    with _service(data_dir) as service:
        progress, report = _progress_bar("export")
        with progress:
            manifest = service.scopes.export(tenant_id, archive, user_id=user_id, progress=report)
    counts = ", ".join(f"{n} {name}" for name, n in manifest["counts"].items() if n)
    console.print(f"wrote {archive} ({archive.stat().st_size} bytes): {counts or 'empty'}")


@app.command("import")
def import_cmd(
    archive: Annotated[Path, typer.Argument(help="An archive written by memsvc export.")],
    tenant_id: Annotated[
        str | None, typer.Option("--tenant", help="Target tenant (default: the archive's).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Import an archive: ids kept, identical rows skipped, conflicts reported (exit 2), never
    merged; the tenant is created when missing."""
    from memsvc.service.transfer import read_manifest

    with _service(data_dir) as service:
        manifest = read_manifest(archive)
        target = tenant_id or manifest["tenant_id"]
        if target not in {t.id for t in service.tenants.list()}:
            service.tenants.create(target, target)
        progress, report = _progress_bar("import")
        with progress:
            result = service.scopes.import_(target, archive, progress=report)
    console.print(f"inserted: {result.inserted}")
    console.print(f"skipped (same content): {result.skipped}")
    for conflict in result.conflicts:
        console.print(f"[yellow]conflict[/yellow] {conflict}")
    if result.conflicts:
        raise typer.Exit(code=2)


@app.command("purge")
def purge_cmd(
    tenant_id: Annotated[str, typer.Option("--tenant", help="The tenant.")],
    user_id: Annotated[str | None, typer.Option("--user", help="Erase this user.")] = None,
    agent_id: Annotated[str | None, typer.Option("--agent", help="Erase this agent.")] = None,
    session_id: Annotated[str | None, typer.Option("--session", help="Erase this session.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Erase every trace of one user, agent or session (docs/security.md, "Purge")."""
    given = [(k, v) for k, v in (("user", user_id), ("agent", agent_id), ("session", session_id))
             if v is not None]  # fmt: skip
    if len(given) != 1:
        console.print("[red]error:[/red] give exactly one of --user, --agent, --session")
        raise typer.Exit(code=1)
    ((kind, scope_id),) = given
    with _service(data_dir) as service:
        result = service.scopes.purge(tenant_id, kind, scope_id, actor="cli")  # type: ignore[arg-type]
    console.print(f"purged {kind} (audit {result.audit_id}): {result.counts.model_dump()}")
    console.print(result.reclaimed)


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
