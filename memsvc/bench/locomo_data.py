"""Reading LoCoMo-schema files: turns with their session times, and questions.

Only ``conversation`` and ``qa`` are read; the generated ``observation``, ``session_summary``
and ``event_summary`` never are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Conversation", "Question", "Turn", "load", "normalise_evidence"]

_SESSION = re.compile(r"^session_(\d+)$")
_DIA = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")


@dataclass(frozen=True)
class Turn:
    dia_id: str
    session: int
    speaker: str
    text: str  # as ingested: the turn's text, plus its shared photo's caption
    time: datetime


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    category: int
    evidence: tuple[str, ...]


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def parse_session_time(value: str) -> datetime:
    """``1:56 pm on 8 May, 2023`` -> an aware UTC datetime."""
    cleaned = re.sub(r"\s+", " ", value.strip())
    for pattern in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%I:%M %p on %B %d, %Y"):
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unrecognised LoCoMo session time {value!r}")


def turn_text(turn: dict) -> str:
    text = str(turn.get("text", "")).strip()
    caption = turn.get("blip_caption")
    if caption:
        text = f"{text} [shares {caption}]".strip()
    return text


def normalise_evidence(raw: list | str | None) -> tuple[str, ...]:
    """Evidence ids as ``D<session>:<turn>``; the dataset's typos (``D:11:26``, ``D8:6; D9:17``)
    are repaired, unreadable ones dropped."""
    items = raw if isinstance(raw, list) else [raw or ""]
    found: list[str] = []
    for item in items:
        for session, turn in _DIA.findall(str(item)):
            found.append(f"D{int(session)}:{int(turn)}")
    return tuple(dict.fromkeys(found))


def _conversation(sample: dict) -> Conversation:
    conv = sample["conversation"]
    result = Conversation(
        sample_id=str(sample["sample_id"]),
        speakers=(conv.get("speaker_a", "A"), conv.get("speaker_b", "B")),
    )
    numbers = sorted(int(m.group(1)) for key in conv if (m := _SESSION.match(key)))
    for number in numbers:
        when = conv.get(f"session_{number}_date_time")
        if not when or not conv.get(f"session_{number}"):
            continue
        time = parse_session_time(when)
        for turn in conv[f"session_{number}"]:
            text = turn_text(turn)
            if text:
                result.turns.append(Turn(turn["dia_id"], number, turn["speaker"], text, time))
    for qa in sample.get("qa", []):
        answer = qa.get("answer", qa.get("adversarial_answer", ""))
        result.questions.append(
            Question(
                question=str(qa["question"]),
                answer=str(answer),
                category=int(qa.get("category", 0)),
                evidence=normalise_evidence(qa.get("evidence")),
            )
        )
    return result


def load(path: Path) -> list[Conversation]:
    """Every conversation of a LoCoMo-schema JSON file."""
    return [_conversation(sample) for sample in json.loads(Path(path).read_text())]
