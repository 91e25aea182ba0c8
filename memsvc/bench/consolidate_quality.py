"""``memsvc bench consolidate --quality``: what consolidation keeps, scored against LoCoMo.

Each conversation is ingested as events (one session per LoCoMo session, event times from the
session's date, as ``memsvc bench locomo`` does) into a fresh embedded store; closing each
session consolidates it with the default (rules) extractor. Then, per conversation and overall:

- observation recall / precision: an annotated ``observation`` is recalled when some extracted
  memory (facts, preferences, plans, events; not episodes) is within MiniLM cosine >= 0.7;
  an extracted memory is precise when it is that close to some observation of the conversation;
- event recall and date accuracy against ``event_summary``: an annotated event is recalled by
  an extracted memory that names the same speaker at cosine >= 0.7, and its date is right when
  the memory's ``occurred_at`` is within 7 days of the annotation's date;
- entities by type and the share failing :func:`memsvc.bench.graph_checks.entity_failure`.

The annotations are read here, for scoring only: ingestion sees turns, nothing else.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from memsvc.bench.graph_checks import entity_failure
from memsvc.bench.locomo import LocomoRun, _ingest
from memsvc.bench.locomo_data import load, parse_session_time

__all__ = ["Annotations", "read_annotations", "render_quality", "run_quality", "score"]

THRESHOLD = 0.7
DATE_DAYS = 7
# What extraction wrote; promoted turns ("message") and episode summaries are not scored.
_FACT_KINDS = ("fact", "preference", "plan", "event")


@dataclass
class Annotations:
    """One conversation's scoring annotations (never shown to consolidation)."""

    observations: list[str] = field(default_factory=list)
    events: list[tuple[str, str, datetime | None]] = field(default_factory=list)  # speaker,text


def _date(value: str) -> datetime | None:
    try:
        return parse_session_time(f"12:00 pm on {value}")
    except ValueError:
        return None


def read_annotations(sample: dict[str, Any]) -> Annotations:
    """``observation`` and ``event_summary`` of one LoCoMo sample."""
    found = Annotations()
    for per_speaker in (sample.get("observation") or {}).values():
        for items in per_speaker.values():
            found.observations += [str(item[0]) for item in items if item and item[0]]
    for session in (sample.get("event_summary") or {}).values():
        when = _date(str(session.get("date", "")))
        for speaker, items in session.items():
            if speaker == "date" or not isinstance(items, list):
                continue
            found.events += [(speaker, str(text), when) for text in items if text]
    return found


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def score(
    embed: Any,
    memories: list[dict[str, Any]],
    notes: Annotations,
) -> dict[str, Any]:
    """Observation and event scores of one conversation; ``memories`` are dicts with
    ``text``, ``kind`` and ``occurred_at``."""
    texts = [m["text"] for m in memories]
    result: dict[str, Any] = {"memories": len(texts), "observations": len(notes.observations)}
    mem = _unit(np.asarray(embed(texts))) if texts else np.zeros((0, 1))
    if notes.observations and texts:
        obs = _unit(np.asarray(embed(notes.observations)))
        sims = obs @ mem.T
        result["obs_recalled"] = int((sims.max(axis=1) >= THRESHOLD).sum())
        result["mem_precise"] = int((sims.max(axis=0) >= THRESHOLD).sum())
    else:
        result["obs_recalled"] = result["mem_precise"] = 0
    result["events"] = len(notes.events)
    result["events_recalled"] = result["events_dated"] = 0
    result["misdated"] = []
    if notes.events and texts:
        ev = _unit(np.asarray(embed([text for _, text, _ in notes.events])))
        sims = ev @ mem.T
        for k, (speaker, _, when) in enumerate(notes.events):
            first = speaker.split()[0].lower()
            named = [j for j, t in enumerate(texts) if first in t.lower()]
            best = max(named, key=lambda j: sims[k, j], default=None)
            if best is None or sims[k, best] < THRESHOLD:
                continue
            result["events_recalled"] += 1
            at = memories[best]["occurred_at"]
            if when is not None and abs((at - when).total_seconds()) <= DATE_DAYS * 86400:
                result["events_dated"] += 1
            elif when is not None and len(result["misdated"]) < 10:  # to read, not scored
                said = f"{texts[best]} ({at:%Y-%m-%d})"
                result["misdated"].append([notes.events[k][1], f"{when:%Y-%m-%d}", said])
    return result


def _entities(memory: Any, user_id: str) -> list[Any]:
    found, cursor = [], None
    while True:
        page = memory.list_entities(user_id=user_id, limit=100, cursor=cursor)
        found += page.data
        cursor = page.next_cursor
        if cursor is None:
            return found


def _memories(memory: Any, user_id: str) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        page = memory.get_all(user_id=user_id, limit=100, cursor=cursor)
        found += [
            {"text": m.text, "kind": m.kind, "occurred_at": m.occurred_at}
            for m in page.data
            if m.kind in _FACT_KINDS
        ]
        cursor = page.next_cursor
        if cursor is None:
            return found


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    return row | {
        "obs_recall": ratio(row["obs_recalled"], row["observations"]),
        "obs_precision": ratio(row["mem_precise"], row["memories"]),
        "event_recall": ratio(row["events_recalled"], row["events"]),
        "event_date_accuracy": ratio(row["events_dated"], row["events_recalled"]),
        "entities_failing_share": ratio(row["entities_failing"], row["entities"]),
    }


def run_quality(
    data: Path,
    *,
    conversations: int | None = None,
    embedder: str = "minilm",
    console: Console | None = None,
) -> dict[str, Any]:
    """Ingest, consolidate and score the first ``conversations`` of ``data``."""
    from memsvc.embeddings import build_embedder
    from memsvc.sdk import Memory
    from memsvc.settings import Settings

    console = console or Console()
    samples = json.loads(Path(data).read_text())[:conversations]
    convs = load(data)[:conversations]
    work = Path(tempfile.mkdtemp(prefix="memsvc-bench-quality-"))
    settings = Settings(
        data_dir=work,
        database_url="",
        index_snapshot_seconds=0,
        embedder=embedder,  # type: ignore[arg-type]
    )
    model = build_embedder(settings)
    memory = Memory(settings=settings, embedder=model)
    rows: list[dict[str, Any]] = []
    examples: dict[str, Any] = {}
    try:
        for sample, conv in zip(samples, convs, strict=True):
            console.print(f"{conv.sample_id}: {len(conv.turns)} turns")
            _ingest(memory, conv, LocomoRun())
            mems = _memories(memory, conv.sample_id)
            row = {"sample_id": conv.sample_id} | score(model.embed, mems, read_annotations(sample))
            entities = _entities(memory, conv.sample_id)
            failing = [
                (e.name, e.type, why)
                for e in entities
                if (why := entity_failure(e.name, e.type, conv.speakers))
            ]
            row["entities"] = len(entities)
            row["entities_by_type"] = dict(Counter(e.type for e in entities))
            row["entities_failing"] = len(failing)
            row["failing_examples"] = failing[:15]
            rows.append(_rates(row))
            if not examples:
                examples = _graph_examples(memory, conv.sample_id, entities)
    finally:
        memory.close()
    total = {k: sum(r[k] for r in rows) for k in _COUNTS}
    total["entities_by_type"] = dict(sum((Counter(r["entities_by_type"]) for r in rows), Counter()))
    return {"conversations": rows, "overall": _rates(total), "examples": examples}


_COUNTS = (
    "memories",
    "observations",
    "obs_recalled",
    "mem_precise",
    "events",
    "events_recalled",
    "events_dated",
    "entities",
    "entities_failing",
)


def _graph_examples(memory: Any, user_id: str, entities: list[Any]) -> dict[str, Any]:
    """A few entities and relations of the first conversation, for the report."""
    page = memory.list_relations(user_id=user_id, limit=40)
    return {
        "entities": [f"{e.name} ({e.type}, {e.mentions})" for e in entities[:40]],
        "relations": [
            f"{r.source.name} -{r.type}-> {r.target.name}"
            + (f" [{r.valid_from:%Y-%m-%d}..{r.valid_to:%Y-%m-%d}]" if r.valid_to else "")
            for r in page.data
        ],
    }


def render_quality(result: dict[str, Any], console: Console, json_path: Path | None) -> None:
    table = Table(title="memsvc bench consolidate --quality")
    columns = ("conversation", "obs recall", "obs precision", "event recall", "dates right",
               "entities", "failing")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for row in [*result["conversations"], result["overall"] | {"sample_id": "overall"}]:
        table.add_row(
            row["sample_id"],
            f"{row['obs_recall']:.3f}",
            f"{row['obs_precision']:.3f}",
            f"{row['event_recall']:.3f}",
            f"{row['event_date_accuracy']:.3f}",
            str(row["entities"]),
            f"{row['entities_failing']} ({row['entities_failing_share']:.1%})",
        )
    console.print(table)
    console.print(f"entities by type: {result['overall']['entities_by_type']}")
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2, default=str))
