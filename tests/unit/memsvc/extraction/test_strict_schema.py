"""The LLM extractor's response schema keeps the strict structured-output rules, and the
checker that says so catches each way a schema breaks them."""

from __future__ import annotations

import copy
from datetime import datetime

from pydantic import BaseModel

from memsvc.extraction.llm import RESPONSE_SCHEMA, LLMExtraction, _Entity, _Fact
from memsvc.extraction.strict import strict_schema_problems


def test_the_response_schema_is_strict() -> None:
    assert strict_schema_problems(RESPONSE_SCHEMA) == []


def test_the_parse_models_match_the_schema() -> None:
    """Pydantic validates the answer against the same fields the schema asks for."""
    facts = RESPONSE_SCHEMA["properties"]["facts"]["items"]
    entity = facts["properties"]["entities"]["items"]
    assert set(LLMExtraction.model_fields) == set(RESPONSE_SCHEMA["required"])
    assert list(_Fact.model_fields) == facts["required"]
    assert list(_Entity.model_fields) == entity["required"]
    nullable = {n for n, p in facts["properties"].items() if "null" in p.get("type", [])}
    assert nullable == {"occurred_on", "attribute", "value"}
    answer = {n: None if n in nullable else [] for n in facts["required"]}
    answer.update(text="t", kind="fact", subject="s")
    assert _Fact.model_validate(answer).attribute is None  # null is accepted where allowed


def _facts_node(schema: dict) -> dict:
    return schema["properties"]["facts"]["items"]


def test_an_open_object_is_refused() -> None:
    schema = copy.deepcopy(RESPONSE_SCHEMA)
    del _facts_node(schema)["additionalProperties"]
    assert strict_schema_problems(schema) == ["$.facts.items: additionalProperties must be false"]


def test_an_optional_property_is_refused() -> None:
    schema = copy.deepcopy(RESPONSE_SCHEMA)
    _facts_node(schema)["required"].remove("attribute")
    (problem,) = strict_schema_problems(schema)
    assert "every property must be required" in problem and "attribute" in problem


def test_defaults_unsupported_keywords_and_a_non_object_root_are_refused() -> None:
    schema = copy.deepcopy(RESPONSE_SCHEMA)
    _facts_node(schema)["properties"]["text"]["minLength"] = 1
    _facts_node(schema)["properties"]["value"]["default"] = None
    problems = strict_schema_problems(schema)
    assert "$.facts.items.text: 'minLength' is not supported in strict mode" in problems
    assert "$.facts.items.value: 'default' is not supported in strict mode" in problems
    assert strict_schema_problems({"anyOf": [RESPONSE_SCHEMA]})[0].startswith("$: the root")
    assert strict_schema_problems({"type": "object", "properties": {"x": {}},
                                   "required": ["x"], "additionalProperties": False}) == [
        "$.x: no type (every schema needs a type, anyOf, enum or $ref)"
    ]  # fmt: skip


def test_pydantic_default_schemas_are_not_strict() -> None:
    """Why the schema is written by hand: pydantic's own output breaks the rules."""

    class Loose(BaseModel):
        text: str
        occurred_on: datetime | None = None
        entities: list[tuple[str, str]] = []

    problems = strict_schema_problems(Loose.model_json_schema())
    assert any("additionalProperties must be false" in p for p in problems)
    assert any("every property must be required" in p for p in problems)
    assert any("'default'" in p for p in problems)
    assert any("'prefixItems'" in p for p in problems)


def test_defs_and_refs_are_checked() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["a"],
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"type": "object", "properties": {"b": {"type": "string"}}}},
    }
    problems = strict_schema_problems(schema)
    assert "$.$defs.A: additionalProperties must be false" in problems
    assert any(p.startswith("$.$defs.A: every property must be required") for p in problems)
