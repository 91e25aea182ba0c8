"""Which words can name an entity: deterministic rules over word lists.

A capitalised word is a name unless it is a function word, pronoun, greeting or chat word
(:data:`NOT_NAMES`), or it stands where English capitalises anyway (a sentence's start) and is
a common word there: lower-case in the web2 word list (``english-words``, shipped inside the
package) and never capitalised in it, or an inflection of one ("Hiking", "Pets"). Names that are
also words ("Grace", "Will", "Caroline") are capitalised in web2 and so stay names. People known
to the caller (a conversation's speakers) are always names.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "CONCRETE_OWNED",
    "NOT_NAMES",
    "ROLE_SYNONYMS",
    "canonical_role",
    "is_common_word",
    "is_name",
]

NOT_NAMES = frozenset(
    """
    i me my mine myself you your yours yourself yourselves we us our ours ourselves he him his
    himself she her hers herself it its itself they them their theirs themselves this that these
    those here there who whom whose which what when where why how a an the and or but nor so yet
    if then than because as of in on at by for with about to from into onto over under after
    before all any both each every either neither some many much few more most no not none
    nothing something anything everything someone anyone everyone somebody anybody everybody
    one is am are was were be been being do does did have has had will would shall should can
    could may might must just also very too really only even still again ever never always
    yes yeah yep yup nope ok okay oh ah aw aww wow woah whoa hey hi hello bye goodbye thanks
    thank please sorry congrats congratulations lol haha hahaha omg btw hmm um uh well sure
    totally definitely absolutely awesome great cool nice glad good amazing wonderful gonna
    wanna gotta let lets let's anyway anyways besides maybe perhaps probably hopefully
    today tonight tomorrow yesterday last next first
    """.split()
)

# A relationship role said two ways is one role ("Deborah's mom" is "Deborah's mother").
ROLE_SYNONYMS = {
    "mom": "mother",
    "mum": "mother",
    "mommy": "mother",
    "dad": "father",
    "daddy": "father",
    "grandma": "grandmother",
    "granny": "grandmother",
    "grandpa": "grandfather",
    "kids": "children",
    "neighbour": "neighbor",
    "hubby": "husband",
    "bf": "boyfriend",
    "gf": "girlfriend",
}

# Things a person owns that are worth an entity of their own; anything else after a possessive
# ("Caroline's goal", "Jolene's week", "Caroline's voice") is not a thing.
CONCRETE_OWNED = frozenset(
    """
    car truck van bike bicycle motorcycle boat house home apartment flat cabin farm garden yard
    guitar piano violin cello drums ukulele camera phone laptop computer book books novel
    painting paintings sculpture drawing mural album bakery shop store cafe restaurant studio
    business company blog channel podcast band necklace ring bracelet watch tattoo
    """.split()
)

_INFLECTION = re.compile(r"(?:ing|ers?|es|s|ed)$")


@lru_cache(maxsize=1)
def _web2() -> frozenset[str]:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2"], lower=False, alpha=True))


def canonical_role(role: str) -> str:
    """``mom`` -> ``mother``; other roles unchanged."""
    return ROLE_SYNONYMS.get(role.lower(), role.lower())


@lru_cache(maxsize=50_000)
def is_common_word(word: str) -> bool:
    """Whether ``word`` (any case) is a common English word and never a name in web2."""
    low = word.lower()
    if low in NOT_NAMES or low in ROLE_SYNONYMS:
        return True
    web = _web2()
    if low in web:
        return low.capitalize() not in web
    if low.capitalize() in web:
        return False
    # Not listed: an inflection of a listed word ("hiking" <- hike, "pets" <- pet).
    m = _INFLECTION.search(low)
    if m is None:
        return False
    stem = low[: m.start()]
    return any(s in web and s.capitalize() not in web for s in (stem, stem + "e") if len(s) > 2)


def is_name(name: str, *, initial: bool, known: frozenset[str] = frozenset()) -> bool:
    """Whether capitalised ``name`` (one or more words) can name an entity.

    ``initial``: it starts a sentence, where a capital says nothing. ``known``: names known to
    be people (a conversation's speakers).
    """
    words = name.split()
    if not words or name in known or words[0] in known:
        return bool(words)
    first = words[0].lower().strip(".,!?'\u2019")
    if first in NOT_NAMES:
        return False
    if "-" in words[0] and re.search(r"-[a-z]", words[0]):  # "Melanie-time"
        return False
    return not (initial and len(words) == 1 and is_common_word(words[0]))
