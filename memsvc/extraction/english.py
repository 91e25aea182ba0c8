"""Small English rules the deterministic extractor needs: pronouns to names, verb agreement.

Deliberately tiny word lists: unknown words are left as they are, which reads slightly off
("Caroline adore") but never says something false.
"""

from __future__ import annotations

import re

__all__ = ["third_person", "to_third_person"]

# Base forms that commonly follow "I" in chat, and take -s for a named subject.
_BASE_VERBS = frozenset(
    """love like enjoy prefer hate dislike want need think go work live play hope plan know
    feel miss own run study teach volunteer paint read write cook bake travel visit believe
    remember wish try make take keep find get use watch listen spend dance sing swim walk hike
    drive ride practice collect adopt care mean agree guess see say tell help support look
    struggle appreciate admire love""".split()
)
_IRREGULAR = {"have": "has", "do": "does", "go": "goes", "am": "is", "'m": "is", "'ve": "has"}
_CONTRACTIONS = [
    (re.compile(r"\bI'm\b"), "{S} is"),
    (re.compile(r"\bI've\b"), "{S} has"),
    (re.compile(r"\bI'll\b"), "{S} will"),
    (re.compile(r"\bI'd\b"), "{S} would"),
    (re.compile(r"\bI am\b"), "{S} is"),
    (re.compile(r"\bI don't\b"), "{S} doesn't"),
    (re.compile(r"\bI do not\b"), "{S} does not"),
    (re.compile(r"\bI have\b"), "{S} has"),
    (re.compile(r"\bI was\b"), "{S} was"),
    (re.compile(r"\b[Mm]yself\b"), "{S}"),
    (re.compile(r"\b[Mm]ine\b"), "{S}'s"),
    (re.compile(r"\b[Mm]y\b"), "{S}'s"),
]
_I_VERB = re.compile(r"\bI\s+([a-z]+)\b")
_I = re.compile(r"\bI\b")
_ME = re.compile(r"\bme\b")


def third_person(verb: str) -> str:
    """``love`` -> ``loves``; unknown words are returned unchanged."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb not in _BASE_VERBS:
        return verb
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def to_third_person(sentence: str, subject: str) -> str:
    """A first-person sentence said by ``subject``, as a statement about them."""
    text = sentence
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement.replace("{S}", subject), text)
    text = _I_VERB.sub(lambda m: f"{subject} {third_person(m.group(1))}", text)
    text = _I.sub(subject, text)
    return _ME.sub(subject, text)
