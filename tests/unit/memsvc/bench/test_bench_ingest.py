"""``memsvc bench ingest``: the JSON it writes has the documented keys and levels."""

from __future__ import annotations

from memsvc.bench.ingest import ConcurrencyResult, IngestBenchResult, _events


def test_json_has_the_documented_keys_and_every_level() -> None:
    result = IngestBenchResult(memories=10, events=20, batch=4, embedder_sentences_per_s=100.0)
    result.levels = [
        ConcurrencyResult(1, 90.0, 9.0, 12.0, 20.0),
        ConcurrencyResult(8, 95.0, 30.0, 40.0, 55.0),
    ]
    out = result.to_json()
    for key in (
        "events_batched_per_s",
        "events_single_per_s",
        "embedder_sentences_per_s",
        "context_p50_ms",
        "context_p95_ms",
        "concurrency",
    ):
        assert key in out
    assert out["events_batched_per_s"] == 90.0  # one client at the top level
    assert out["concurrency"]["8"]["context_p95_ms"] == 55.0


def test_events_alternate_speakers_in_time_order() -> None:
    events = _events(["a b c", "d e f", "g h i"], offset=10)
    assert [e["speaker"] for e in events] == ["Ann", "Bob", "Ann"]
    times = [e["event_time"] for e in events]
    assert times == sorted(times) and len(set(times)) == 3
