"""``memsvc bench locomo``: LoCoMo retrieval quality through the public SDK (BENCHMARKS.md s.1).

Every turn is written as a chat agent would, one event at a time, with its speaker and its
session's date-time (turns of a session a second apart, in order), scoped ``user_id =
sample_id``. Then every session is closed (the system consolidates as it normally does) and
every question is asked through search, with no other hint.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memsvc.bench.locomo_data import Conversation, load
from memsvc.bench.locomo_metrics import DumpedResult, QuestionScore, score_question
from memsvc.retrieval.render import result_line

__all__ = ["LocomoRun", "run_locomo"]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass
class LocomoRun:
    scores: dict[int, list[QuestionScore]] = field(default_factory=lambda: defaultdict(list))
    ingest_seconds: float = 0.0
    events: int = 0
    search_ms: list[float] = field(default_factory=list)
    result_words: list[int] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        every = [s for scores in self.scores.values() for s in scores]

        def summary(scores: list[QuestionScore]) -> dict[str, float]:
            return {
                "ev@10": statistics.fmean(s.ev_at_10 for s in scores),
                "ev@250w": statistics.fmean(s.ev_at_250w for s in scores),
                "ans@1k": statistics.fmean(s.ans_at_1k for s in scores),
                "questions": len(scores),
            }

        ordered = sorted(self.search_ms)
        return {
            **summary(every),
            "per_category": {
                f"{c} {CATEGORIES.get(c, '')}".strip(): summary(s)
                for c, s in sorted(self.scores.items())
            },
            "ingest_events_per_s": self.events / self.ingest_seconds if self.ingest_seconds else 0,
            "search_p50_ms": ordered[len(ordered) // 2] if ordered else 0.0,
            "search_p95_ms": ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0,
            "avg_words_per_result": statistics.fmean(self.result_words) if self.result_words else 0,
        }


def _ingest(memory: Any, conv: Conversation, run: LocomoRun) -> dict[str, str]:
    """Write every turn as its own event; returns event id -> dia_id."""
    dia_of: dict[str, str] = {}
    offsets: dict[int, int] = defaultdict(int)
    start = time.perf_counter()
    for turn in conv.turns:
        n = offsets[turn.session]
        offsets[turn.session] += 1
        (event,) = memory.add_events(
            [
                {
                    "role": "user",
                    "speaker": turn.speaker,
                    "content": turn.text,
                    "event_time": turn.time + timedelta(seconds=n),
                    "metadata": {"dia_id": turn.dia_id},
                }
            ],
            user_id=conv.sample_id,
            session_id=f"{conv.sample_id}-session-{turn.session}",
        )
        dia_of[event.id] = turn.dia_id
    for session in sorted(offsets):
        memory.close_session(f"{conv.sample_id}-session-{session}")
    run.ingest_seconds += time.perf_counter() - start
    run.events += len(conv.turns)
    return dia_of


def _dia_map(memory: Any, conv: Conversation) -> dict[str, str]:
    """Event id -> dia_id, read back from an earlier run's events (``--reuse``)."""
    mapping: dict[str, str] = {}
    cursor = None
    while True:
        page = memory.get_events(user_id=conv.sample_id, limit=1000, cursor=cursor)
        for event in page.data:
            if "dia_id" in event.metadata:
                mapping[event.id] = str(event.metadata["dia_id"])
        cursor = page.next_cursor
        if cursor is None:
            return mapping


def _ask(
    memory: Any, conv: Conversation, dia_of: dict[str, str], run: LocomoRun, dump: Any
) -> None:
    turns = {t.dia_id: t.text for t in conv.turns}
    for q in conv.questions:
        start = time.perf_counter()
        hits = memory.search(q.question, user_id=conv.sample_id, top_k=100)
        run.search_ms.append((time.perf_counter() - start) * 1000)
        results = [
            DumpedResult(
                result_line(h),
                tuple(dict.fromkeys(dia_of[e] for e in h.shown_event_ids() if e in dia_of)),
            )
            for h in hits
        ]
        dump.write(
            json.dumps(
                {
                    "sample_id": conv.sample_id,
                    "question": q.question,
                    "category": q.category,
                    "answer": q.answer,
                    "evidence": list(q.evidence),
                    "results": [{"text": r.text, "dia_ids": list(r.dia_ids)} for r in results],
                }
            )
            + "\n"
        )
        if 1 <= q.category <= 4 and q.evidence:
            run.result_words += [len(r.text.split()) for r in results[:10]]
            run.scores[q.category].append(score_question(results, q.evidence, q.answer, turns))


def _open_memory(
    url: str | None,
    api_key: str | None,
    work_dir: Path | None,
    preset_name: str,
    embedder_backend: str | None = None,
) -> Any:
    if url:
        if preset_name != "default":
            raise ValueError("--preset applies to the embedded run; a server ranks by its own")
        if embedder_backend:
            raise ValueError("--embedder-backend applies to the embedded run; a server has its own")
        from memsvc.sdk import MemoryClient

        return MemoryClient(url, api_key, timeout=120)
    from memsvc.retrieval.presets import preset
    from memsvc.sdk import Memory
    from memsvc.settings import Settings

    data_dir = Path(work_dir or tempfile.mkdtemp(prefix="memsvc-locomo-"))
    # The backend is validated like the setting: a bad name is a clear error.
    backend = {"embedder_backend": embedder_backend} if embedder_backend else {}
    settings = Settings(data_dir=data_dir, database_url="", index_snapshot_seconds=0, **backend)
    retrieval = preset(preset_name, settings.retrieval)
    return Memory(settings=settings.model_copy(update={"retrieval": retrieval}))


def run_locomo(
    data: Path,
    *,
    dump_path: Path,
    url: str | None = None,
    api_key: str | None = None,
    work_dir: Path | None = None,
    limit: int | None = None,
    reuse: bool = False,
    preset: str = "default",
    embedder_backend: str | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Ingest, consolidate, ask; write the dump and return the metrics.

    With ``reuse``, the conversations are taken as already ingested (an earlier run's
    ``work_dir`` or server) and only the questions are asked. ``preset`` names the retrieval
    configuration of an embedded run (:mod:`memsvc.retrieval.presets`) over the settings.
    """
    console = console or Console()
    conversations = load(data)[:limit]
    run = LocomoRun()
    memory = _open_memory(url, api_key, work_dir, preset, embedder_backend)
    total = sum(len(c.turns) + len(c.questions) for c in conversations)
    try:
        with dump_path.open("w") as dump, Progress(console=console) as progress:
            task = progress.add_task("locomo", total=total)
            for conv in conversations:
                progress.update(task, description=f"{conv.sample_id}: ingest")
                dia_of = _dia_map(memory, conv) if reuse else _ingest(memory, conv, run)
                progress.advance(task, len(conv.turns))
                progress.update(task, description=f"{conv.sample_id}: questions")
                _ask(memory, conv, dia_of, run, dump)
                progress.advance(task, len(conv.questions))
    finally:
        memory.close()
    from memsvc.settings import Settings

    backend_name = "server" if url else embedder_backend or Settings().embedder_backend
    return run.metrics() | {"preset": preset, "embedder_backend": backend_name}


def render(metrics: dict[str, Any], console: Console, json_path: Path | None) -> None:
    table = Table(title="memsvc bench locomo")
    for column in ("questions", "ev@10", "ev@250w", "ans@1k"):
        table.add_column(column if column != "questions" else "category", justify="right")
    for name, m in metrics["per_category"].items():
        table.add_row(name, f"{m['ev@10']:.3f}", f"{m['ev@250w']:.3f}", f"{m['ans@1k']:.3f}")
    table.add_row(
        f"all ({metrics['questions']})",
        f"{metrics['ev@10']:.3f}",
        f"{metrics['ev@250w']:.3f}",
        f"{metrics['ans@1k']:.3f}",
    )
    console.print(table)
    console.print(
        f"ingest {metrics['ingest_events_per_s']:.1f} events/s, search p50 "
        f"{metrics['search_p50_ms']:.1f} ms, p95 {metrics['search_p95_ms']:.1f} ms, "
        f"{metrics['avg_words_per_result']:.1f} words per result"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(metrics, indent=2))
