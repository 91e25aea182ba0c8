"""Single-valued attributes of a subject ("where X lives"), for contradiction detection.

A fact that fills a slot gets ``slot = "<subject key>|<attribute>"`` and a normalised value;
two facts with the same slot and different values contradict each other, and the newer one
closes the older one's validity. Facts matching no rule have no slot and never contradict.
"""

from __future__ import annotations

import re

from memsvc.retrieval.text import STOP_WORDS

__all__ = ["entity_key", "find_slot"]

_CAPS = r"(?P<v>[A-Z][\w'.-]*(?:\s+(?:of\s+|de\s+)?[A-Z][\w'.-]*)*)"
_PHRASE = (
    r"(?P<v>[A-Za-z0-9][\w' -]*?)(?=\s+(?:and|but|because|since|so|at|for|in|with)\b|[,.;!]|$)"
)

# (attribute, pattern on the third-person sentence with {S} for the subject).
_RULES: list[tuple[str, str]] = [
    (
        "lives_in",
        r"{S} (?:now )?(?:lives|is living|has lived|has been living|moved|relocated|"
        r"has moved|is moving|just moved)(?: back)? (?:in|to) " + _CAPS,
    ),
    (
        "works_at",
        r"{S} (?:now )?(?:works|is working|started working|got a job|has a job|"
        r"started a new job|is employed) (?:at|for) " + _CAPS,
    ),
    ("job", r"{S} (?:now )?(?:works|is working) as (?:a|an) " + _PHRASE),
    ("relationship", r"{S} is (?:now )?(?P<v>single|married|engaged|divorced|widowed)\b"),
    ("age", r"{S} is (?:now )?(?P<v>\d{1,3}) years old"),
    ("favorite:{a}", r"{S}'s favou?rite (?P<a>[a-z]+(?: [a-z]+)?) is " + _PHRASE),
    (
        "pet_name:{a}",
        r"{S}'s (?P<a>dog|cat|puppy|kitten|horse|bird|rabbit)(?:'s name)? is "
        r"(?:called |named )?(?P<v>[A-Z]\w+)",
    ),
]
_LIKE = re.compile(
    r"(?P<neg>doesn't|does not|no longer|stopped|can't stand|never)?\s*"
    r"(?P<verb>loves|likes|enjoys|adores|hates|dislikes|like|love|enjoy|stand)\s+"
    + _PHRASE.replace("(?P<v>", "(?P<obj>")
)
_NEGATIVE_VERBS = {"hates", "dislikes"}


def entity_key(name: str) -> str:
    """Identity of a name inside one graph: lower case, single spaces, no leading article."""
    words = re.sub(r"[^\w' -]", " ", name.lower()).split()
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)[:200]


# Words that say how much, not what: "likes hiking anymore" is about hiking.
_DEGREE = frozenset("anymore anyway much lot lots really still now either though too".split())


def _object_key(phrase: str) -> str:
    words = [w for w in re.findall(r"[a-z']+", phrase.lower()) if w not in STOP_WORDS | _DEGREE]
    return " ".join(words[:3])


def find_slot(sentence: str, subject: str) -> tuple[str, str] | None:
    """``(attribute, value)`` of the first single-valued attribute the sentence sets."""
    s = re.escape(subject)
    for attribute, template in _RULES:
        m = re.search(template.replace("{S}", s), sentence)
        if m:
            name = (
                attribute.format(a=m.groupdict().get("a", "")) if "{a}" in attribute else attribute
            )
            value = m.group("v").strip().rstrip(".").lower()
            if value:
                return name, value
    m = re.search(rf"\b{s}\s+" + _LIKE.pattern, sentence)
    if m:
        obj = _object_key(m.group("obj"))
        if obj:
            negative = bool(m.group("neg")) != (m.group("verb") in _NEGATIVE_VERBS)
            return f"likes:{obj}", "no" if negative else "yes"
    return None
