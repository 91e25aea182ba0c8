"""Deterministic, realistic short memories and queries for load benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["SyntheticMemory", "memories", "queries"]

_NAMES = """Alice Bruno Carmen Dmitri Elena Farid Grace Hiro Ines Jonas Kavya Liam Mei Nadia Omar
Priya Quinn Rosa Sven Tara Umar Vera Wen Ximena Yusuf Zoe""".split()
_PLACES = """Lisbon Osaka Denver Nairobi Oslo Lima Hanoi Krakow Austin Porto Seoul Cairo Quebec
Tbilisi Perth Bergen Cusco Dakar Valencia Reykjavik""".split()
_ACTIVITIES = """hiking, painting watercolours, learning the cello, rock climbing, baking sourdough,
training for a half marathon, birdwatching, playing chess online, growing tomatoes, restoring an old
bike, writing a fantasy novel, learning Japanese, practising yoga, building a treehouse, brewing
kombucha, volunteering at the animal shelter, collecting vinyl records, swimming at dawn""".split(
    ", "
)
_FOODS = """sushi, lentil soup, pad thai, dark chocolate, green tea, spicy ramen, falafel, mango
sorbet, black coffee, blue cheese, oat milk lattes, grilled sardines""".split(", ")
_RELATIONS = "sister brother mother father cousin neighbour colleague best friend partner".split()
_MONTHS = """January February March April May June July August September October November
December""".split()

_TEMPLATES = [
    "{name} started {activity} in {month}.",
    "{name} moved to {place} for a new job.",
    "{name}'s favourite food is {food}.",
    "{name} is allergic to {food}.",
    "{name}'s {relation} lives in {place}.",
    "{name} wants to visit {place} next {month}.",
    "{name} gave up {activity} after an injury.",
    "{name} and their {relation} went {activity} last weekend.",
    "{name} prefers {food} over {food2}.",
    "{name} is saving money for a trip to {place}.",
    "{name}'s {relation} recommended {activity} to reduce stress.",
    "{name} celebrated a birthday in {place} in {month}.",
]

_QUERY_TEMPLATES = [
    "What hobby did {name} pick up?",
    "Where does {name}'s {relation} live?",
    "What food does {name} like?",
    "Which city is {name} planning to travel to?",
    "What is {name} allergic to?",
    "When did {name} start {activity}?",
]


@dataclass(frozen=True)
class SyntheticMemory:
    text: str
    user_id: str


def _fill(rng: random.Random, template: str) -> str:
    food, food2 = rng.sample(_FOODS, 2)
    return template.format(
        name=rng.choice(_NAMES),
        place=rng.choice(_PLACES),
        activity=rng.choice(_ACTIVITIES),
        food=food,
        food2=food2,
        relation=rng.choice(_RELATIONS),
        month=rng.choice(_MONTHS),
    )


def memories(n: int, users: int, seed: int = 0) -> list[SyntheticMemory]:
    """``n`` short first/third-person memories spread over ``users`` users."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = _fill(rng, rng.choice(_TEMPLATES))
        # A detail per memory keeps texts distinct (no dedupe NOOPs) and realistic.
        detail = f" ({rng.choice(['noted', 'mentioned', 'said'])} in chat #{i})"
        out.append(SyntheticMemory(text + detail, f"user-{i % users}"))
    return out


def queries(n: int, users: int, seed: int = 1) -> list[SyntheticMemory]:
    """``n`` questions, each scoped to one of ``users`` users."""
    rng = random.Random(seed)
    return [
        SyntheticMemory(_fill(rng, rng.choice(_QUERY_TEMPLATES)), f"user-{rng.randrange(users)}")
        for _ in range(n)
    ]
