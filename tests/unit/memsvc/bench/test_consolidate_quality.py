"""``memsvc bench consolidate --quality`` on a tiny synthetic LoCoMo-schema file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memsvc.bench.consolidate_quality import read_annotations
from memsvc.bench.graph_checks import entity_failure
from memsvc.cli import app

SAMPLE = {
    "sample_id": "tiny-1",
    "conversation": {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:00 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I moved to Lisbon last month."},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "I love painting with my sister."},
        ],
        "session_2_date_time": "2:00 pm on 20 May, 2023",
        "session_2": [
            {"speaker": "Ann", "dia_id": "D2:1", "text": "I adopted a puppy yesterday."},
        ],
    },
    "observation": {
        "session_1_observation": {
            "Ann": [["Ann moved to Lisbon in April 2023.", "D1:1"]],
            "Bob": [["Bob loves painting with Bob's sister.", "D1:2"]],
        },
        "session_2_observation": {"Ann": [["Ann owns a violin.", "D2:1"]]},
    },
    "event_summary": {
        "events_session_2": {"Ann": ["Ann adopted a puppy."], "Bob": [], "date": "19 May, 2023"},
    },
    "qa": [],
}


def test_annotations_are_read_for_scoring() -> None:
    notes = read_annotations(SAMPLE)
    assert len(notes.observations) == 3
    assert [(s, t) for s, t, _ in notes.events] == [("Ann", "Ann adopted a puppy.")]


def test_stated_entity_rules() -> None:
    speakers = ("Caroline", "Melanie")
    for name, type_ in [("No", "person"), ("Here", "person"), ("Those", "person"),
                        ("Painting", "person"), ("Melanie-time", "person"),
                        ("Caroline's", "place"), ("Caroline's goal", "thing"),
                        ("Caroline's voice", "thing"), ("Caroline", "place")]:  # fmt: skip
        assert entity_failure(name, type_, speakers), name
    for name, type_ in [("Caroline", "person"), ("Deborah's mother", "person"),
                        ("Lisbon", "place"), ("painting", "activity")]:  # fmt: skip
        assert entity_failure(name, type_, speakers) is None, name


def test_quality_bench_scores_a_tiny_file(tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps([SAMPLE]))
    out = tmp_path / "quality.json"
    result = CliRunner().invoke(
        app,
        ["bench", "consolidate", "--quality", "--data", str(data), "--json", str(out),
         "--embedder", "hash"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    (row,) = figures["conversations"]
    assert row["sample_id"] == "tiny-1"
    assert row["observations"] == 3
    # Word-for-word statements are recalled; the violin was never said.
    assert row["obs_recalled"] == 2
    assert row["events"] == 1
    assert row["entities"] >= 2
    assert figures["overall"]["obs_recall"] == 2 / 3
