"""The rules of strict structured output (OpenAI ``json_schema`` with ``strict: true``), as a
checker: servers that implement it (OpenAI, vLLM, llama.cpp, Ollama, LiteLLM proxies) refuse a
schema that breaks them, so :data:`memsvc.extraction.llm.RESPONSE_SCHEMA` is tested against
this before any server sees it.

The rules: the root is an object; every object lists all its properties in ``required`` and
sets ``additionalProperties: false``; an optional value is a required property whose type
includes ``"null"``; no ``default``; none of the keywords strict mode does not support (the
conservative list: outside OpenAI's documented subset, e.g. ``minLength``); at most 10
levels of nesting and 5000 properties in all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UNSUPPORTED_KEYWORDS", "strict_schema_problems"]

UNSUPPORTED_KEYWORDS = frozenset(
    """default allOf oneOf not if then else dependentRequired dependentSchemas minLength maxLength
    patternProperties unevaluatedProperties propertyNames minProperties maxProperties
    unevaluatedItems contains minContains maxContains uniqueItems prefixItems""".split()
)
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
MAX_DEPTH = 10
MAX_PROPERTIES = 5000


def strict_schema_problems(schema: dict[str, Any]) -> list[str]:
    """Every way ``schema`` breaks the strict rules, as ``"<json path>: <problem>"``; empty
    when a strict server would accept it."""
    problems: list[str] = []
    counted = [0]
    if schema.get("type") != "object":
        problems.append("$: the root must be an object (not anyOf, not another type)")
    _walk(schema, "$", 1, problems, counted)
    for name, definition in (schema.get("$defs") or {}).items():
        _walk(definition, f"$.$defs.{name}", 1, problems, counted)
    if counted[0] > MAX_PROPERTIES:
        problems.append(f"$: {counted[0]} properties; at most {MAX_PROPERTIES}")
    return problems


def _walk(node: Any, path: str, depth: int, problems: list[str], counted: list[int]) -> None:
    if not isinstance(node, dict):
        problems.append(f"{path}: a schema must be an object, not {type(node).__name__}")
        return
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested deeper than {MAX_DEPTH} levels")
        return
    for keyword in sorted(UNSUPPORTED_KEYWORDS & node.keys()):
        problems.append(f"{path}: '{keyword}' is not supported in strict mode")
    if "$ref" in node:
        return  # its definition is checked under $defs
    if "anyOf" in node:
        for n, branch in enumerate(node["anyOf"]):
            _walk(branch, f"{path}.anyOf[{n}]", depth, problems, counted)
        return
    types = node.get("type")
    listed = types if isinstance(types, list) else [types]
    if types is None and "enum" not in node and "const" not in node:
        problems.append(f"{path}: no type (every schema needs a type, anyOf, enum or $ref)")
    for t in listed:
        if t is not None and t not in _TYPES:
            problems.append(f"{path}: unknown type {t!r}")
    if "object" in listed:
        _object(node, path, depth, problems, counted)
    if "array" in listed:
        if "items" not in node:
            problems.append(f"{path}: an array needs 'items'")
        else:
            _walk(node["items"], f"{path}.items", depth + 1, problems, counted)


def _object(
    node: dict[str, Any], path: str, depth: int, problems: list[str], counted: list[int]
) -> None:
    if node.get("additionalProperties") is not False:
        problems.append(f"{path}: additionalProperties must be false")
    properties = node.get("properties")
    if not isinstance(properties, dict):
        problems.append(f"{path}: an object needs 'properties'")
        return
    counted[0] += len(properties)
    required = node.get("required") or []
    missing = [name for name in properties if name not in required]
    if missing:
        problems.append(
            f"{path}: every property must be required (make it nullable instead): {missing}"
        )
    unknown = [name for name in required if name not in properties]
    if unknown:
        problems.append(f"{path}: required names unknown properties {unknown}")
    for name, child in properties.items():
        _walk(child, f"{path}.{name}", depth + 1, problems, counted)
