"""Entities and relations read off a fact, deterministically.

People (the subject, named people, family members), places (after "in/to/from/visited"),
organisations (acronyms, "... University", "... Club"), things the subject owns ("Caroline's
guitar") and activities they do or like. Relations come from the fact's slot (``lives_in``,
``works_at``, ``likes``...), from possessives (``family:sister``, ``owns``) and from visits.

Only words that can name something become entities (:mod:`memsvc.extraction.names`): no
function words, greetings or sentence-initial common words; a possessive makes an entity only
for an unnamed relative ("Deborah's mother", a person) or a concrete thing ("Caroline's
guitar"), never an abstraction ("Caroline's goal"). A role said two ways is one entity
("Deborah's mom" is "Deborah's mother"), with the other wording kept as an alias.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field

from memsvc.extraction.base import Candidate
from memsvc.extraction.names import (
    CONCRETE_OWNED,
    NOT_NAMES,
    canonical_role,
    is_common_word,
    is_name,
)
from memsvc.extraction.slots import entity_key
from memsvc.graph.relations import typed_relations

__all__ = ["EntityMention", "FactGraph", "RelationMention", "read_graph"]

_FAMILY = (
    "sister|brother|mother|mom|mum|dad|father|wife|husband|partner|friend|son|daughter|kids|"
    "children|boss|coworker|colleague|cousin|aunt|uncle|grandma|grandmother|grandpa|"
    "grandfather|neighbor|neighbour|boyfriend|girlfriend|best friend|family"
)
_PETS = "dog|cat|puppy|kitten|horse|bird|rabbit|hamster|fish|parrot|snake|turtle"
_ORG_WORDS = (
    "Inc|Corp|University|College|School|Company|Club|Hospital|Church|Center|Centre|"
    "Foundation|Institute|Bank|Group|Team|Studio|Library|Museum|Association|Society|Agency"
)
_CAPS = r"[A-Z][\w'-]*(?:\s+(?:of\s+)?[A-Z][\w'-]*)*"
_NOT_NAMES = (
    {m for m in calendar.month_name if m}
    | {d for d in calendar.day_name}
    | {a for a in (*calendar.month_abbr, *calendar.day_abbr) if a}  # "Fri", "Sept"
    | {"I", "The", "A", "An", "It", "This", "That", "My", "We", "You", "He", "She", "They"}
)
_CLAUSE_STARTS = frozenset("seeing being having getting making knowing watching".split())
_SLOT_RELATIONS = {
    "lives_in": ("lives_in", "place"),
    "works_at": ("works_at", "organisation"),
    "job": ("works_as", "activity"),
    "relationship": (None, None),
    "age": (None, None),
}


@dataclass(frozen=True)
class EntityMention:
    key: str
    name: str
    type: str  # person, place, organisation, thing, activity
    role: str = "mention"  # subject, object, mention


@dataclass(frozen=True)
class RelationMention:
    source: str  # entity keys
    type: str
    target: str


@dataclass
class FactGraph:
    entities: dict[str, EntityMention] = field(default_factory=dict)
    relations: list[RelationMention] = field(default_factory=list)
    aliases: dict[str, set[str]] = field(default_factory=dict)  # key -> other wordings seen

    def add(self, name: str, type_: str, role: str = "mention", *, alias: str = "") -> str:
        key = entity_key(name)
        if key and key not in self.entities:
            self.entities[key] = EntityMention(key, name.strip(), type_, role)
        if key and alias and entity_key(alias) != key:
            self.aliases.setdefault(key, set()).add(alias.strip())
        return key

    def relate(self, source: str, type_: str, target: str) -> None:
        if source and target and source != target:
            self.relations.append(RelationMention(source, type_, target))


def _likeable(name: str, fact: Candidate) -> bool:
    """Whether what a like names is a thing one likes, not a clause ("loves that art lets
    us ...", "loves how it shows togetherness") nor a person ("loves mom")."""
    said = re.search(
        r"\b(?:loves?|likes?|enjoys?|adores?|hates?|dislikes?|stand)\s+(\S+)", fact.text
    )
    first = said.group(1).lower().strip(",.!") if said else ""
    if first in NOT_NAMES or first in _CLAUSE_STARTS or canonical_role(first) != first:
        return False
    words = name.split()
    subject = entity_key(fact.subject)
    return not any(w == subject or canonical_role(w) != w or w in _FAMILY.split("|") for w in words)


def _slot_relation(graph: FactGraph, subject: str, fact: Candidate) -> None:
    if not fact.slot or not fact.value:
        return
    attribute = fact.slot.split("|", 1)[1]
    relation, type_ = _SLOT_RELATIONS.get(attribute, (None, "thing"))
    if attribute.startswith("likes:"):
        name = attribute.split(":", 1)[1]
        relation, type_ = ("likes" if fact.value == "yes" else "dislikes"), "activity"
        if not _likeable(name, fact):
            return
    elif attribute.startswith(("favorite:", "pet_name:")):
        kind, name = attribute.split(":", 1)
        relation = "favorite" if kind == "favorite" else "owns"
        name = fact.value if kind == "favorite" else fact.value.title()
        type_ = "thing"
    else:
        m = re.search(re.escape(fact.value), fact.text, re.I)
        name = m.group(0) if m else fact.value
    if relation:
        type_ = "thing" if "'s " in name else type_  # "likes Caroline's painting": a thing
        graph.relate(subject, relation, graph.add(name, type_, "object"))


def _possessives(graph: FactGraph, subject_key: str, fact: Candidate) -> None:
    s = re.escape(fact.subject)
    for m in re.finditer(rf"{s}'s ({_FAMILY})(?:,?\s+({_CAPS}))?", fact.text):
        role = canonical_role(m.group(1))
        named = m.group(2) and is_name(m.group(2), initial=False)
        said = f"{fact.subject}'s {m.group(1)}"
        relative = m.group(2) if named else f"{fact.subject}'s {role}"
        key = graph.add(relative, "person", "object", alias="" if named else said)
        graph.relate(subject_key, f"family:{role}", key)
    for m in re.finditer(rf"{s}'s ({_PETS})\b", fact.text):
        graph.relate(subject_key, "owns", graph.add(f"{fact.subject}'s {m.group(1)}", "thing"))
    for m in re.finditer(rf"{s}'s (?:[a-z]+ )?([a-z]+)\b", fact.text):
        noun = m.group(1)
        # Only things worth keeping: "Caroline's goal/voice/best" name nothing one could find.
        if noun not in CONCRETE_OWNED:
            continue
        graph.relate(subject_key, "owns", graph.add(f"{fact.subject}'s {noun}", "thing"))


def _initial(text: str, start: int) -> bool:
    """Whether ``start`` begins a sentence (or a quote, or a caption), where capitals say
    nothing about names."""
    before = text[:start].rstrip()
    return not before or before[-1] in '.!?:;"([\u201c'


def _names(graph: FactGraph, subject_key: str, fact: Candidate) -> None:
    text = fact.text
    for m in re.finditer(rf"\b(?:in|to|from|at|near|visited|visit)\s+(?:the\s+)?({_CAPS})", text):
        name = m.group(1)
        if name.split()[0] in _NOT_NAMES or re.search(r"'s\b", name):
            continue  # "to Caroline's" is a person's, not a place
        if not is_name(name, initial=False):
            continue
        is_org = re.search(rf"\b(?:{_ORG_WORDS})\b", name) or name.isupper()
        key = graph.add(name, "organisation" if is_org else "place")
        if fact.kind == "event" and re.search(r"\b(?:went|visited|traveled|travelled)\b", text):
            graph.relate(subject_key, "visited", key)
    for m in re.finditer(_CAPS, text):
        name = re.sub(r"'s$", "", m.group(0))
        if m.start() == 0 or name.split()[0] in _NOT_NAMES or entity_key(name) in graph.entities:
            continue
        if not is_name(name, initial=_initial(text, m.start())):
            continue
        if re.search(rf"\b(?:{_ORG_WORDS})\b", name) or (name.isupper() and len(name) > 1):
            graph.add(name, "organisation")
        elif " " not in name or _full_name(name):
            graph.add(name, "person")
        else:
            graph.add(name, "thing")


def _full_name(name: str) -> bool:
    """ "Ed Sheeran", "Amy Ellis Nutt": two or three words, each a name, none a common word
    ("Becoming Nicole", "Pride Month" are titles and events)."""
    words = name.split()
    return 2 <= len(words) <= 3 and not any("'" in w or is_common_word(w) for w in words)


def _given(graph: FactGraph, name: str, type_: str) -> None:
    """An entity an LLM extractor named, under the same rules as the ones read here."""
    m = re.fullmatch(r"(.+?)'s\s+([a-z]+)", name.strip())
    if m and canonical_role(m.group(2)) in _FAMILY.split("|"):
        graph.add(f"{m.group(1)}'s {canonical_role(m.group(2))}", "person", alias=name)
    elif m and m.group(2) not in CONCRETE_OWNED:
        return
    elif name.split() and name.split()[0].lower() not in NOT_NAMES:
        graph.add(name, type_)


def read_graph(fact: Candidate) -> FactGraph:
    """The entities a fact mentions (its subject first) and the relations it states."""
    graph = FactGraph()
    subject = fact.subject if entity_key(fact.subject) not in ("", "user") else "user"
    subject_key = graph.add(subject, "person")
    graph.entities[subject_key] = EntityMention(
        subject_key, graph.entities[subject_key].name, "person", "subject"
    )
    for name, type_ in fact.entities:  # given by an LLM extractor
        _given(graph, name, type_)
    _slot_relation(graph, subject_key, fact)
    _possessives(graph, subject_key, fact)
    _names(graph, subject_key, fact)
    typed_relations(graph, subject_key, fact)
    return graph
