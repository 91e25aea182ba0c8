"""Typed relations read off a fact's words: does_activity, attended, plans_to.

The slot relations (``lives_in``, ``works_at``, ``likes``) and the possessive ones
(``family:<role>``, ``owns``) are read in :mod:`memsvc.graph.entities`. Every relation takes
its fact's validity, from the time it was said; a contradicting fact closes it with its fact
(:mod:`memsvc.service.facts.invalidate`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from memsvc.extraction.names import NOT_NAMES

if TYPE_CHECKING:
    from memsvc.extraction.base import Candidate
    from memsvc.graph.entities import FactGraph

__all__ = ["RELATION_TYPES", "typed_relations"]

RELATION_TYPES = (
    "family:<role>",
    "works_at",
    "works_as",
    "lives_in",
    "likes",
    "dislikes",
    "does_activity",
    "attended",
    "plans_to",
    "visited",
    "owns",
    "favorite",
)

_STOP = NOT_NAMES | {"with", "at", "in", "on", "for", "to", "and", "but", "after", "since"}
# "went hiking", "goes swimming", "has been running" (but not "is going to ...").
_GERUND = re.compile(r"\b(?:went|goes|go|has been going|loves going|went out) ([a-z]+ing)\b")
_PRACTICE = re.compile(
    r"\b(?:does|did|practices|practises|practiced|practised|plays|played|took up|takes up|"
    r"is learning|learned|learnt|started learning|started|teaches|taught|volunteers at|"
    r"volunteered at|signed up for) (?:a |an |the |some )?([a-z]+(?: [a-z]+)?)"
    r"(?: (?:class|classes|lessons|course|workshop))?\b"
)
_ATTENDED = re.compile(
    r"\b(?:attended|went to|goes to|joined|took part in|participated in|ran|ran in|competed in) "
    r"(?:a |an |the |her |his |their )?((?:[A-Za-z0-9']+ ){0,3}?"
    r"(?:group|meeting|conference|parade|concert|festival|"
    r"event|class|workshop|camp|retreat|seminar|talk|show|fair|race|marathon|game|match|"
    r"wedding|party|ceremony|service|club|session|course|exhibition|support group))\b"
)
_PLAN = re.compile(
    r"\b(?:is going to|is gonna|plans to|is planning to|planning to|wants to|hopes to|will|"
    r"is thinking of|is thinking about|is looking forward to|intends to) "
    r"((?:[a-z]+ing|[a-z]+)(?: [A-Za-z']+){0,3})"
)
_ACTIVITY_NOT = frozenset(
    """something nothing anything thing things lot bit working living going feeling getting
    trying thinking looking doing being having making taking using wondering hoping""".split()
)


# What a plan can be about: "will visit Paris", "is thinking of studying counseling"; not
# "will keep ya posted", "is going to tell", "wants to pass".
_PLAN_VERBS = frozenset(
    """visit travel go study learn take start join adopt move buy build open run paint write
    attend apply become try volunteer organize organise host teach make bake cook hike camp
    swim climb compete enroll sign finish launch publish record perform play sell plant get
    continue pursue""".split()
)


def _plan_verb(word: str) -> bool:
    low = word.lower()
    bases = {low, low.removesuffix("ing"), low.removesuffix("ing") + "e", low[:-4]}
    return bool(bases & _PLAN_VERBS) and (low in _PLAN_VERBS or low.endswith("ing"))


def _activity(name: str) -> bool:
    """Whether ``name`` can name an activity: content words, no adverb ("recently"), no
    possessive ("keep using Caroline's voice")."""
    words = name.lower().split()
    return bool(words) and not (
        any(w in _STOP or w in _ACTIVITY_NOT or w.endswith("ly") or "'" in w for w in words)
    )


def _phrase(text: str) -> str:
    """The words up to the first function word: "studying counseling next year" -> "studying
    counseling"."""
    words: list[str] = []
    for word in text.split():
        if word.lower() in _STOP or word.lower() in ("next", "this", "last", "soon"):
            break
        words.append(word)
    return " ".join(words).strip(" .,!'")


def typed_relations(graph: FactGraph, subject_key: str, fact: Candidate) -> None:
    """Add the subject's activities, what it attended and what it plans to do."""
    text = fact.text
    for m in _GERUND.finditer(text):
        if m.group(1) not in _ACTIVITY_NOT:
            activity = graph.add(m.group(1), "activity", "object")
            graph.relate(subject_key, "does_activity", activity)
    for m in _PRACTICE.finditer(text):
        name = _phrase(m.group(1))
        if _activity(name):
            graph.relate(subject_key, "does_activity", graph.add(name, "activity", "object"))
    if fact.kind in ("event", "fact"):
        for m in _ATTENDED.finditer(text):
            name = m.group(1).strip()
            if name.split()[0].lower() in _STOP:  # "joined into a group"
                continue
            type_ = "organisation" if re.search(r"\b(?:group|club)\b", name) else "activity"
            graph.relate(subject_key, "attended", graph.add(name, type_, "object"))
    if fact.kind == "plan":
        for m in _PLAN.finditer(text):
            places = [k for k, e in graph.entities.items() if e.type == "place" and e.name in text]
            name = _phrase(m.group(1))
            if places:
                graph.relate(subject_key, "plans_to", places[0])  # "will visit Paris"
            elif len(name.split()) >= 2 and _plan_verb(name.split()[0]) and _activity(name):
                graph.relate(subject_key, "plans_to", graph.add(name, "activity", "object"))
