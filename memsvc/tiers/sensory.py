"""Sensory memory: a cheap, deterministic salience gate in front of working memory.

It drops filler (acknowledgements, greetings, thanks) and splits long messages into pieces at
sentence boundaries. Nothing is embedded here; every decision is returned per event and stored
on the event row, so it is traceable to the event it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memsvc.config.tiers import SensoryConfig
from memsvc.retrieval.text import SENTENCE_END

__all__ = ["GateDecision", "gate"]

_WORD = re.compile(r"[a-z']+|\d+")

# Words that carry no memory on their own. A message made only of these is filler.
FILLER_WORDS = frozenset(
    """ok okay k kk yes yeah yep yup no nope sure cool great nice awesome good fine wow haha
    hahaha lol lmao thanks thank you thx ty cheers hi hello hey hiya bye goodbye cya see ya
    later night morning good hmm hm mm uh um ah oh alright right indeed true totally exactly
    absolutely definitely agreed np welcome you're youre so much very really a the too
    gotcha got it sounds there all everyone guys man dude buddy friend""".split()
)


@dataclass(frozen=True)
class GateDecision:
    """What the gate did with one event: ``kept`` with its pieces, or ``dropped:<reason>``."""

    decision: str
    pieces: tuple[str, ...]

    @property
    def kept(self) -> bool:
        return self.decision == "kept"


def _is_filler(content: str, config: SensoryConfig) -> bool:
    words = _WORD.findall(content.lower())
    return len(words) <= config.max_filler_words and all(w in FILLER_WORDS for w in words)


def _split(content: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut between sentences where possible."""
    if len(content) <= limit:
        return [content]
    pieces: list[str] = []
    current = ""
    for sentence in SENTENCE_END.split(content):
        while len(sentence) > limit:  # one endless sentence: cut at the last space
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def gate(content: str, config: SensoryConfig) -> GateDecision:
    """Decide what of one message enters working memory."""
    text = content.strip()
    if not text:
        return GateDecision("dropped:empty", ())
    if config.enabled and _is_filler(text, config):
        return GateDecision("dropped:filler", ())
    return GateDecision("kept", tuple(_split(text, config.max_piece_chars)))
