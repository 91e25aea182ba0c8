"""A small OpenAI-compatible chat-completions server, run as its own process by the tests.

It checks a request the way the real API does and answers in its shapes:

- ``Authorization: Bearer <key>`` when started with ``--api-key`` (401 otherwise);
- ``model`` present and one it serves (404 ``model_not_found`` otherwise);
- ``messages`` a non-empty list of ``{role, content}`` with known roles;
- ``response_format`` ``{"type": "json_schema", "json_schema": {"name", "strict": true,
  "schema"}}`` whose schema keeps the strict rules: every object ``additionalProperties:
  false`` and every property required, no ``default`` and none of the keywords strict mode
  refuses. Anything else is a 400 with OpenAI's error body
  ``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``.

The answer is canned but made from the request: one fact per message line of the user
content (the JSON list of ``{id, time, speaker, text}`` memsvc sends), tagged with the
categories listed in the system prompt whose name or keywords the line contains. A line
containing ``[stub:500]`` makes it answer 500, for the retry path. ``GET /_requests`` lists
every request body received (``DELETE /_requests`` clears the list).

Written independently of ``memsvc.extraction.strict`` on purpose: the test must not check the
schema with the code that wrote it.

    python -m tests.integration.extraction.openai_stub --port 0 [--model NAME] [--api-key KEY]

prints ``listening on http://127.0.0.1:PORT/v1`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_REFUSED = {
    "default", "oneOf", "allOf", "not", "if", "then", "else", "prefixItems", "minLength",
    "maxLength", "patternProperties", "unevaluatedProperties", "propertyNames",
    "minProperties", "maxProperties", "uniqueItems", "contains",
}  # fmt: skip


class BadRequest(Exception):
    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error"
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }


def _schema_errors(node: Any, context: tuple[str, ...]) -> list[str]:
    """The strict-mode complaints about one schema node and what it contains."""
    where = f"In context={context}"
    if not isinstance(node, dict):
        return [f"{where}, schema must be a JSON object."]
    errors = [f"{where}, '{k}' is not permitted." for k in sorted(_REFUSED & node.keys())]
    if "anyOf" in node:
        for n, branch in enumerate(node["anyOf"]):
            errors += _schema_errors(branch, (*context, "anyOf", str(n)))
        return errors
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        if node.get("additionalProperties") is not False:
            errors.append(
                f"{where}, 'additionalProperties' is required to be supplied and to be false."
            )
        properties = node.get("properties") or {}
        missing = [p for p in properties if p not in (node.get("required") or [])]
        if missing:
            errors.append(
                f"{where}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, child in properties.items():
            errors += _schema_errors(child, (*context, "properties", name))
    if "array" in kinds:
        errors += _schema_errors(node.get("items"), (*context, "items"))
    return errors


def check_request(body: Any, models: set[str]) -> dict[str, Any]:
    """The response_format's schema of a valid request; a BadRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest(400, "We could not parse the JSON body of your request.")
    model = body.get("model")
    if not model:
        raise BadRequest(400, "you must provide a model parameter", param="model")
    if model not in models:
        raise BadRequest(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "'messages' must be a non-empty array.", param="messages")
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise BadRequest(400, f"Invalid value for 'messages[{n}].role'.", f"messages[{n}].role")
        if not isinstance(message.get("content"), str):
            raise BadRequest(400, f"Invalid type for 'messages[{n}].content'.", f"messages[{n}]")
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise BadRequest(400, "response_format must be json_schema here.", "response_format")
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not spec.get("name"):
        raise BadRequest(400, "Missing required parameter: 'response_format.json_schema.name'.",
                         "response_format.json_schema.name")  # fmt: skip
    if spec.get("strict") is not True:
        raise BadRequest(400, "This server only serves strict structured output.",
                         "response_format.json_schema.strict")  # fmt: skip
    schema = spec.get("schema")
    errors = (
        ["schema must be a JSON Schema of 'type: \"object\"'."]
        if (not isinstance(schema, dict) or schema.get("type") != "object")
        else _schema_errors(schema, ())
    )
    if errors:
        raise BadRequest(
            400,
            f"Invalid schema for response_format '{spec['name']}': {errors[0]}",
            param="response_format",
            code="invalid_json_schema",
        )
    return schema


def _categories(system: str) -> list[tuple[str, list[str]]]:
    """``- name[: description][; keywords: a, b]`` lines after the "Categories" heading of
    the system prompt: each name with its keywords."""
    if "Categories" not in system:
        return []
    section = system.split("Categories", 1)[1]
    found = []
    for m in re.finditer(r"^- ([^:\n]+)(?::(.*))?$", section, re.M):
        rest = m.group(2) or ""
        words = rest.split("keywords:", 1)[1].split(",") if "keywords:" in rest else []
        found.append((m.group(1).strip(), [w.strip() for w in words if w.strip()]))
    return found


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """One fact per message line, in OpenAI's chat.completion shape."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    lines = json.loads(user)
    categories = _categories(system)
    facts = []
    for line in lines:
        text = line["text"].strip()
        if "[stub:500]" in text:
            raise BadRequest(500, "The server had an error while processing your request.")
        if len(text.split()) < 3:
            continue
        lowered = text.lower()
        tags = [
            name for name, words in categories
            if any(re.search(rf"\b{re.escape(w.lower())}\b", lowered) for w in [name, *words])
        ]  # fmt: skip
        facts.append(
            {
                "text": f"{line['speaker']} said: {text.rstrip('.!')}.",
                "kind": "fact",
                "subject": line["speaker"],
                "event_ids": [line["id"]],
                "occurred_on": None,
                "attribute": None,
                "value": None,
                "entities": [{"name": line["speaker"], "type": "person"}],
                "categories": tags,
            }
        )
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": json.dumps({"facts": facts}),
                    "refusal": None,
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def make_server(port: int, models: set[str], api_key: str | None) -> ThreadingHTTPServer:
    received: list[Any] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/_requests":
                with lock:
                    self._send(200, list(received))
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": m} for m in sorted(models)]})
            else:
                self._send(404, BadRequest(404, f"Unknown path {self.path}").body())

        def do_DELETE(self) -> None:
            with lock:
                received.clear()
            self._send(200, {"deleted": True})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            with lock:
                received.append(body)
            if self.path != "/v1/chat/completions":
                self._send(404, BadRequest(404, f"Unknown path {self.path}").body())
                return
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._send(401, BadRequest(401, "Incorrect API key provided.",
                                           code="invalid_api_key").body())  # fmt: skip
                return
            try:
                check_request(body, models)
                self._send(200, answer(body))
            except BadRequest as exc:
                self._send(exc.status, exc.body())

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    server = make_server(args.port, set(args.model or ["stub-extractor"]), args.api_key)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
