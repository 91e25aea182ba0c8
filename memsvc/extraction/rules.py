"""The default extractor: deterministic, sentence level, no model.

Each sentence of a user's message that states something (not a question, not small talk) and
is about the speaker ("I ...", "My ...") or about someone named ("Jon moved to Oslo") becomes a
candidate. First-person sentences are rewritten about the speaker by name; relative dates are
resolved against the time the message was said; the kind (fact, preference, plan, event) and
any single-valued slot ("lives_in") are read off the words.
"""

from __future__ import annotations

import re

from memsvc.extraction.base import NO_GUIDE, Candidate, Extractor, Guide, SourceEvent
from memsvc.extraction.dates import resolve_dates
from memsvc.extraction.english import to_third_person
from memsvc.extraction.names import is_name
from memsvc.extraction.slots import entity_key, find_slot
from memsvc.retrieval.text import STOP_WORDS

__all__ = ["RulesExtractor", "classify", "split_sentences"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_LEAD = re.compile(
    r"^(?:(?:oh|well|yeah|yes|yep|so|and|but|actually|honestly|btw|also|anyway|haha|lol|wow|"
    r"hey|hi|ok|okay|um|hmm|ah|plus|anyways)\b[,!.]*\s+)+",
    re.I,
)
_VOCATIVE = re.compile(r"^[A-Z][a-z]+,\s+(?=(?:I|My|my)\b)")
_FIRST_PERSON = re.compile(r"^(?:\S+\s+){0,6}?(?:I|I'm|I've|I'll|I'd)\b|^My\b")
_NAME_START = re.compile(r"^(?P<name>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)(?:'s)?\s+(?P<next>[a-z']+)")
_NAME_VERBS = re.compile(r"^(?:is|was|has|had|will|can|just|also|now|[a-z]+(?:s|ed))$")
_NOT_NAMES = frozenset(
    """it that this there they he she we you what when where which who why how thanks thank wow
    sounds congrats congratulations great awesome nice cool glad sorry good yes yeah haha totally
    definitely absolutely let keep take hope hopefully maybe probably sure really just love
    looking remember check tell have do did is are was were can could would should will that's
    it's there's here's what's omg lol oh well so and but also anyway everything something
    nothing someone everyone life family people being having the a an my our your his her
    their its""".split()
)
_WORD = re.compile(r"\w+")

_PLAN = re.compile(
    r"\b(?:going to|gonna|plans? to|planning|will|intends? to|hopes? to|wants? to|"
    r"thinking (?:of|about)|looking forward|next (?:week|month|year|weekend)|tomorrow|"
    r"in the week after)\b",
    re.I,
)
_EVENT = re.compile(
    r"\b(?:went|visited|attended|started|finished|joined|moved|met|bought|adopted|graduated|"
    r"took|ran|won|lost|celebrated|married|began|signed|volunteered|participated|received|"
    r"traveled|travelled|hiked|camped|performed|organized|organised|launched|opened|quit|"
    r"painted|wrote|read|saw|made|got|had|did|was|were|ago|yesterday)\b",
    re.I,
)
_PREFERENCE = re.compile(
    r"\b(?:loves?|likes?|enjoys?|prefers?|hates?|dislikes?|adores?|favou?rite|fan of|"
    r"passionate about|can't stand)\b",
    re.I,
)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def classify(sentence: str, dated: bool) -> str:
    """fact, preference, plan or event, read off the words (first match in that order)."""
    if _PLAN.search(sentence):
        return "plan"
    if _EVENT.search(sentence) or dated:
        return "event"
    if _PREFERENCE.search(sentence):
        return "preference"
    return "fact"


def _content_words(text: str) -> int:
    return sum(1 for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def _clean(sentence: str) -> str:
    sentence = _LEAD.sub("", sentence.strip())
    sentence = _VOCATIVE.sub("", sentence)
    return sentence[:1].upper() + sentence[1:] if sentence else sentence


def _subject_of(
    sentence: str, speaker: str, known: frozenset[str] = frozenset()
) -> tuple[str, str] | None:
    """(subject, third-person text), or None when the sentence is not a statement about
    the speaker or someone named. A capitalised first word is a name only when it is not a
    common word ("Painting is fun", "Those were the days"), unless ``known`` names it."""
    if _FIRST_PERSON.search(sentence):
        return speaker, to_third_person(sentence, speaker)
    m = _NAME_START.match(sentence)
    if m is None or m.group("name").split()[0].lower() in _NOT_NAMES:
        return None
    if not is_name(m.group("name"), initial=True, known=known):
        return None
    if not entity_key(m.group("name")):
        return None
    possessive = sentence[len(m.group("name")) :].startswith("'s")
    return (m.group("name"), sentence) if possessive or _NAME_VERBS.match(m.group("next")) else None


class RulesExtractor(Extractor):
    """Deterministic sentence-level extraction (the default; see the module docstring)."""

    name = "rules"

    def __init__(self, *, roles: tuple[str, ...] = ("user",), min_content_words: int = 2):
        self.roles = roles
        self.min_content_words = min_content_words

    def extract(self, events: list[SourceEvent], guide: Guide = NO_GUIDE) -> list[Candidate]:
        # The batch's speakers are people, whatever their names look like ("Will", "Luna").
        known = frozenset(e.speaker.strip() for e in events if e.speaker and e.speaker.strip())
        found = [c for event in events for c in self.extract_event(event, known=known)]
        for candidate in found:
            # Categories by keyword: in the fact as written or in the sentence as said.
            candidate.categories = guide.tag(f"{candidate.text}\n{candidate.sentence}")
        return found

    def extract_event(
        self, event: SourceEvent, *, known: frozenset[str] = frozenset()
    ) -> list[Candidate]:
        if event.role not in self.roles:
            return []
        speaker = (event.speaker or "").strip() or "The user"
        known = known | {speaker}
        found = []
        for raw in split_sentences(event.text):
            sentence = _clean(raw)
            if sentence.endswith("?") or _content_words(sentence) < self.min_content_words:
                continue
            about = _subject_of(sentence, speaker, known)
            if about is None:
                continue
            subject, text = about
            text, date = resolve_dates(text, event.time)
            text = text[:1].upper() + text[1:]
            slot = find_slot(text, subject)
            found.append(
                Candidate(
                    text=text if text.endswith((".", "!")) else text + ".",
                    kind=classify(text, date is not None),
                    event_ids=(event.id,),
                    subject=subject,
                    occurred_at=date.day if date else event.time,
                    valid_from=event.time,
                    slot=f"{entity_key(subject)}|{slot[0]}" if slot else None,
                    value=slot[1] if slot else None,
                    sentence=raw.strip(),
                )
            )
        return found
