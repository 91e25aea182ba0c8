"""``memsvc bench export``: export and import memories/s, archive bytes per memory, peak RSS.

1. A fresh source instance (SQLite in a temporary data directory, or ``--database-url``) is
   filled with ``n`` synthetic memories over ``n/1000`` users, in batches, with the embedder
   chosen (``hash`` by default: the figures are about the archive, not about embedding).
2. The tenant is exported, then imported into a fresh target instance (SQLite, or
   ``--target-database-url``), each in a child process that reports its wall time and its
   peak resident set (``ru_maxrss``) before and after the operation: the growth is what the
   archive's size costs in memory (the export streams, so it should stay flat in ``n``).

Import re-embeds nothing: the archive carries each memory's vectors.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from memsvc.bench.synthetic import memories

__all__ = ["ExportBenchResult", "render", "run_export_bench"]

_TENANT = "bench"


@dataclass
class ExportBenchResult:
    n: int
    embedder: str
    source: str
    target: str
    export_s: float
    export_memories_per_s: float
    import_s: float
    import_memories_per_s: float
    archive_bytes: int
    archive_bytes_per_memory: float
    export_peak_rss_mb: float
    export_rss_growth_mb: float
    import_peak_rss_mb: float
    import_rss_growth_mb: float


def _settings(data_dir: Path, database_url: str, embedder: str) -> Any:
    from memsvc.settings import Settings

    return Settings(data_dir=data_dir, database_url=database_url, embedder=embedder,
                    index_snapshot_seconds=0, gc_freeze=False)  # fmt: skip


def _fill(settings: Any, n: int, batch: int = 1000) -> None:
    from consolidation.dispatch import build_service
    from memsvc.schemas import MemoryCreate

    service = build_service(settings)
    try:
        service.tenants.create(_TENANT, _TENANT)
        items = memories(n, max(1, n // 1000))
        for start in range(0, n, batch):
            chunk = [
                MemoryCreate(text=m.text, user_id=m.user_id) for m in items[start : start + batch]
            ]
            service.memories.add(_TENANT, chunk, actor="bench")
    finally:
        service.close()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(argv: list[str]) -> None:
    """Run one export or import in this process; print the figures as JSON."""
    op, data_dir, database_url, embedder, archive = argv
    from consolidation.dispatch import build_service

    service = build_service(_settings(Path(data_dir), database_url, embedder))
    try:
        service.warm_up()
        before = _rss_mb()
        start = time.perf_counter()
        if op == "export":
            service.scopes.export(_TENANT, Path(archive))
        else:
            if _TENANT not in {t.id for t in service.tenants.list()}:
                service.tenants.create(_TENANT, _TENANT)
            report = service.scopes.import_(_TENANT, Path(archive))
            assert not report.conflicts, report.conflicts[:3]
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "rss_before_mb": before, "rss_peak_mb": _rss_mb()}))
    finally:
        service.close()


def _run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "memsvc.bench.export", *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_export_bench(
    n: int,
    *,
    embedder: str = "hash",
    database_url: str = "",
    target_database_url: str = "",
    console: Console,
) -> ExportBenchResult:
    with tempfile.TemporaryDirectory(prefix="memsvc-bench-export-") as tmp:
        root = Path(tmp)
        source, target, archive = root / "source", root / "target", root / "tenant.zip"
        console.print(f"filling {n} memories ({embedder} embedder)...")
        _fill(_settings(source, database_url, embedder), n)
        console.print("exporting...")
        exported = _run_child("export", str(source), database_url, embedder, str(archive))
        console.print("importing...")
        imported = _run_child("import", str(target), target_database_url, embedder, str(archive))
        size = archive.stat().st_size
    return ExportBenchResult(
        n=n,
        embedder=embedder,
        source="postgresql" if database_url else "sqlite",
        target="postgresql" if target_database_url else "sqlite",
        export_s=round(exported["seconds"], 2),
        export_memories_per_s=round(n / exported["seconds"]),
        import_s=round(imported["seconds"], 2),
        import_memories_per_s=round(n / imported["seconds"]),
        archive_bytes=size,
        archive_bytes_per_memory=round(size / n, 1),
        export_peak_rss_mb=round(exported["rss_peak_mb"], 1),
        export_rss_growth_mb=round(exported["rss_peak_mb"] - exported["rss_before_mb"], 1),
        import_peak_rss_mb=round(imported["rss_peak_mb"], 1),
        import_rss_growth_mb=round(imported["rss_peak_mb"] - imported["rss_before_mb"], 1),
    )


def render(result: ExportBenchResult, console: Console, json_path: Path | None) -> None:
    table = Table(
        title=f"export/import of {result.n} memories ({result.source} -> {result.target})"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in asdict(result).items():
        table.add_row(key, str(value))
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    child(sys.argv[1:])
