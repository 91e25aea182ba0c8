"""The benchmark's own check of graph entities (issue 23 item 1), stated as lists.

Deliberately independent of the extractor's filters, so the benchmark does not grade the
extractor by its own rules. An entity fails when its name is:

1. a function word, pronoun, greeting or chat word (:data:`FUNCTION_WORDS`), or starts with one
   ("Those", "No", "Hey Mel");
2. for a person, place or organisation: a single capitalised common word (:data:`COMMON_WORDS`,
   or one lower-case in the web2 word list and never capitalised there: "Painting", "Pottery");
3. a possessive of an abstraction (``X's <noun>`` with the noun in :data:`ABSTRACTIONS`:
   "Caroline's goal", "Jolene's week") or a bare possessive ("Caroline's");
4. a person glued to a common word by a hyphen ("Melanie-time");
5. a conversation's speaker typed other than person.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["ABSTRACTIONS", "COMMON_WORDS", "FUNCTION_WORDS", "entity_failure"]

FUNCTION_WORDS = frozenset(
    """
    i me my mine myself you your yours yourself we us our ours ourselves he him his himself she
    her hers herself it its itself they them their theirs themselves this that these those here
    there who whom whose which what when where why how a an the and or but nor so yet if then
    than because as of in on at by for with about to from into onto over under after before
    all any both each every either neither some many much few more most no not none nothing
    something anything everything someone anyone everyone somebody anybody everybody one
    is am are was were be been being do does did have has had will would shall should can
    could may might must just also very too really only even still again ever never always
    yes yeah yep yup nope ok okay oh ah aw aww wow woah whoa hey hi hello bye goodbye thanks
    thank please sorry congrats congratulations lol haha hahaha omg btw hmm um uh well sure
    totally definitely absolutely awesome great cool nice glad good amazing wonderful gonna
    wanna gotta let lets let's
    """.split()
)

COMMON_WORDS = frozenset(
    """
    painting pottery hiking camping running reading writing dancing swimming cooking baking
    art music yoga kids family friends friend mom mum dad mother father sister brother
    today yesterday tomorrow tonight weekend week month year summer winter spring fall autumn
    time life love support pride journey goal dream passion class school work job beach park
    photo photos pic pics picture pictures book books
    """.split()
)

ABSTRACTIONS = frozenset(
    """
    goal goals voice best week weekend day time life dream dreams journey passion passions
    experience experiences story stories way idea ideas thoughts feelings feeling heart mind
    plan plans hope hopes love support advice help decision choice journey self identity
    courage strength inspiration motivation happiness joy pride faith future past turn part
    side place point reason words message work job career interest interests attention
    """.split()
)

_POSSESSIVE = re.compile(r"^(?P<owner>.+?)['\u2019]s(?:\s+(?P<noun>[\w-]+))?$")
_HYPHEN_COMMON = re.compile(r"^[A-Z]\w+-[a-z]")


@lru_cache(maxsize=1)
def _web2() -> frozenset[str]:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2"], lower=False, alpha=True))


def _common(word: str) -> bool:
    low = word.lower()
    if low in COMMON_WORDS:
        return True
    web = _web2()
    return low in web and low.capitalize() not in web


def entity_failure(name: str, type_: str, speakers: tuple[str, ...] = ()) -> str | None:
    """Which rule ``name`` (typed ``type_``) breaks, or None when it passes."""
    words = name.split()
    if not words:
        return "empty"
    first = words[0].lower().strip(".,!?'\u2019")
    if first in FUNCTION_WORDS:
        return "function word"
    if m := _POSSESSIVE.match(name):
        noun = (m.group("noun") or "").lower()
        if not noun:
            return "bare possessive"
        if noun in ABSTRACTIONS:
            return "possessive abstraction"
    if _HYPHEN_COMMON.match(name) and type_ == "person":
        return "hyphenated common word"
    if name in speakers and type_ != "person":
        return "speaker not a person"
    if type_ in ("person", "place", "organisation") and len(words) == 1 and _common(name):
        return "common word"
    return None
