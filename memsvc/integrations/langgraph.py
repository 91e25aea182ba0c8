"""``MemsvcStore``: a LangGraph ``BaseStore`` on memsvc (``graph.compile(store=...)``, LangMem).

Built from a :class:`~memsvc.MemoryClient`, an embedded :class:`~memsvc.Memory` or an
:class:`~memsvc.AsyncMemoryClient`; every operation is one or a few calls of that client, so
it goes through the operations table like every other door.

How LangGraph's items map onto memsvc memories (one memory per item):

- **Scope.** Every item is stored with ``agent_id`` (the store's, default ``"langgraph"``). With
  ``user_level=i``, the namespace's label at position ``i`` is also the memory's ``user_id``
  (LangMem's ``("memories", "{user_id}")`` is ``user_level=1``), so memsvc's per-user views,
  deletes and filters line up with the graph's users.
- **Namespace and key** are metadata: ``lg_ns`` (the labels joined by ``.``, which LangGraph
  forbids inside a label), ``lg_ns0``, ``lg_ns1``, ... (one per label, so a namespace prefix is
  an equality filter evaluated in SQL), ``lg_depth`` and ``lg_key``.
- **Value.** ``lg_value`` holds the value as JSON, so ``get`` returns exactly what was put
  (values are limited by ``MEMSVC_MAX_METADATA_BYTES``). The memory's text, what recall
  embeds and indexes, is the value's ``index`` fields (the put's, else the store's
  ``index_fields``) joined by newlines, or else the whole value as JSON.
- **search** with a ``query`` is memsvc's hybrid recall (dense + BM25 + graph, fused; the
  item's ``score`` is the fused score) inside the namespace prefix; without one, items newest
  first. ``filter`` applies to values with LangGraph's semantics (equality, nested dicts,
  ``$eq $ne $gt $gte $lt $lte``), after recall: a query fetches up to ``MEMSVC_MAX_TOP_K``
  (``max_top_k``) candidates for it.
- **list_namespaces** reads the store's memories (prefix conditions are filters in SQL).

Other memories of the scope (written by other doors, without ``lg_ns``) are never returned.
TTLs are not supported (``supports_ttl = False``: LangGraph refuses a ``ttl``).

Sync and async: over a ``MemoryClient`` or ``Memory`` both ``batch`` and ``abatch`` work
(``abatch`` on a worker thread); over an ``AsyncMemoryClient`` only ``abatch`` (and the ``a*``
methods, ``graph.ainvoke``) do, since its connections belong to its event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Generator, Iterable, Mapping
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from langgraph.store.base.embed import get_text_at_path

from memsvc.schemas import MemoryPublic
from memsvc.sdk._async.client import AsyncMemoryClient

__all__ = ["MemsvcStore"]

NAMESPACE = "lg_ns"
KEY = "lg_key"
VALUE = "lg_value"
DEPTH = "lg_depth"
PAGE = 100  # memories per list request

# A step of an operation: (client method, args, kwargs); the driver sends back its result.
Call = tuple[str, tuple[Any, ...], dict[str, Any]]
Steps = Generator[Call, Any, Any]


def _level(i: int) -> str:
    return f"{NAMESPACE}{i}"


class MemsvcStore(BaseStore):
    """A LangGraph store whose items are memsvc memories (see the module's mapping)."""

    supports_ttl = False

    def __init__(
        self,
        client: Any,
        *,
        agent_id: str = "langgraph",
        user_level: int | None = None,
        index_fields: list[str] | None = None,
        kind: str = "note",
        max_top_k: int = 100,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.user_level = user_level
        self.index_fields = index_fields
        self.kind = kind
        self.max_top_k = max_top_k
        self._is_async = isinstance(client, AsyncMemoryClient)

    # -- the two drivers: one set of operations, run with a sync or an async client -------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        if self._is_async:
            raise TypeError(
                "MemsvcStore over an AsyncMemoryClient is async only: use abatch / the a* "
                "methods (graph.ainvoke), or build it from a MemoryClient or Memory"
            )
        results = []
        for op in ops:
            steps = self._steps(op)
            try:
                call = next(steps)
                while True:
                    name, args, kwargs = call
                    call = steps.send(getattr(self.client, name)(*args, **kwargs))
            except StopIteration as done:
                results.append(done.value)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        if not self._is_async:
            return await asyncio.to_thread(self.batch, list(ops))
        results = []
        for op in ops:
            steps = self._steps(op)
            try:
                call = next(steps)
                while True:
                    name, args, kwargs = call
                    call = steps.send(await getattr(self.client, name)(*args, **kwargs))
            except StopIteration as done:
                results.append(done.value)
        return results

    def _steps(self, op: Op) -> Steps:
        if isinstance(op, GetOp):
            return self._get(op)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(op)
        raise TypeError(f"unknown store operation {type(op).__name__}")

    # -- the mapping ------------------------------------------------------------------------

    def _scope(self, namespace: tuple[str, ...]) -> dict[str, Any]:
        scope: dict[str, Any] = {"agent_id": self.agent_id}
        if self.user_level is not None and len(namespace) > self.user_level:
            scope["user_id"] = namespace[self.user_level]
        return scope

    def _text(self, value: Mapping[str, Any], index: list[str] | bool | None) -> str:
        fields = index if isinstance(index, list) else self.index_fields
        if index is not False and fields:
            texts = [t for path in fields for t in get_text_at_path(value, path) if t]
            if texts:
                return "\n".join(texts)
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    @staticmethod
    def _metadata(namespace: tuple[str, ...], key: str, value: Mapping[str, Any]) -> dict:
        metadata: dict[str, Any] = {_level(i): label for i, label in enumerate(namespace)}
        metadata.update(
            {
                NAMESPACE: ".".join(namespace),
                DEPTH: len(namespace),
                KEY: key,
                VALUE: json.dumps(value, ensure_ascii=False),
            }
        )
        return metadata

    @staticmethod
    def _item(memory: MemoryPublic, score: float | None = None) -> Item:
        meta = memory.metadata
        fields = {
            "namespace": tuple(meta[NAMESPACE].split(".")),
            "key": meta[KEY],
            "value": json.loads(meta[VALUE]),
            "created_at": memory.created_at,
            "updated_at": memory.updated_at,
        }
        if score is None:
            return Item(**fields)
        return SearchItem(**fields, score=score)

    def _find(self, namespace: tuple[str, ...], key: str) -> Steps:
        metadata = {NAMESPACE: ".".join(namespace), KEY: key}
        scope = self._scope(namespace)
        page = yield ("get_all", (), {"filters": {"metadata": metadata}, "limit": 1, **scope})
        return page.data[0] if page.data else None

    # -- the operations -----------------------------------------------------------------------

    def _get(self, op: GetOp) -> Steps:
        memory = yield from self._find(op.namespace, op.key)
        return None if memory is None else self._item(memory)

    def _put(self, op: PutOp) -> Steps:
        existing = yield from self._find(op.namespace, op.key)
        if op.value is None:  # LangGraph's delete
            if existing is not None:
                yield ("delete", (existing.id,), {})
            return None
        text = self._text(op.value, op.index)
        metadata = self._metadata(op.namespace, op.key, op.value)
        if existing is not None:
            yield ("update", (existing.id,), {"text": text, "metadata": metadata})
            return None
        item = {"text": text, "metadata": metadata, "kind": self.kind}
        written = yield ("add", (item,), self._scope(op.namespace))
        if written[0].event == "NOOP":
            # The same text is stored under another key of this scope (memsvc keeps one copy
            # of equal texts): this item's text names its key, so it is a memory of its own.
            item["text"] = f"{text}\n[{'/'.join((*op.namespace, op.key))}]"
            yield ("add", (item,), self._scope(op.namespace))
        return None

    def _search(self, op: SearchOp) -> Steps:
        prefix = op.namespace_prefix
        filters = {"metadata": {_level(i): label for i, label in enumerate(prefix)} or None}
        scope = self._scope(prefix)
        wanted = op.offset + op.limit
        found: list[Item] = []
        if op.query:
            top_k = min(self.max_top_k, wanted * 5 if op.filter else wanted)
            results = yield (
                "search",
                (op.query,),
                {"filters": filters, "top_k": max(1, top_k), **scope},
            )
            for result in results:
                if NAMESPACE in result.memory.metadata:
                    item = self._item(result.memory, result.score)
                    if _matches(item.value, op.filter):
                        found.append(item)
            return found[op.offset : wanted]
        cursor = None
        while len(found) < wanted:
            page = yield (
                "get_all",
                (),
                {"filters": filters, "limit": PAGE, "cursor": cursor, **scope},
            )
            for memory in page.data:
                if NAMESPACE in memory.metadata:
                    item = self._item(memory)
                    if _matches(item.value, op.filter):
                        found.append(SearchItem(**_fields(item), score=None))
            cursor = page.next_cursor
            if cursor is None:
                break
        return found[op.offset : wanted]

    def _list_namespaces(self, op: ListNamespacesOp) -> Steps:
        metadata: dict[str, Any] = {}
        for condition in op.match_conditions or ():
            if condition.match_type == "prefix":
                metadata.update(
                    {_level(i): label for i, label in enumerate(condition.path) if label != "*"}
                )
        namespaces: set[tuple[str, ...]] = set()
        cursor = None
        while True:
            page = yield (
                "get_all",
                (),
                {
                    "agent_id": self.agent_id,
                    "filters": {"metadata": metadata or None},
                    "limit": PAGE,
                    "cursor": cursor,
                },
            )
            for memory in page.data:
                if NAMESPACE in memory.metadata:
                    namespaces.add(tuple(memory.metadata[NAMESPACE].split(".")))
            cursor = page.next_cursor
            if cursor is None:
                break
        kept = [
            ns
            for ns in namespaces
            if all(_does_match(condition, ns) for condition in op.match_conditions or ())
        ]
        if op.max_depth is not None:
            kept = list({ns[: op.max_depth] for ns in kept})
        return sorted(kept)[op.offset : op.offset + op.limit]


def _fields(item: Item) -> dict[str, Any]:
    return {
        "namespace": item.namespace,
        "key": item.key,
        "value": item.value,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """LangGraph's prefix / suffix match with ``*`` wildcards."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    pairs = (
        zip(namespace, path, strict=False)
        if condition.match_type == "prefix"
        else zip(reversed(namespace), reversed(path), strict=False)
    )
    return all(want == "*" or have == want for have, want in pairs)


def _matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    return not filter or all(_compare(value.get(k), v) for k, v in filter.items())


def _compare(have: Any, want: Any) -> bool:
    """LangGraph's filter semantics (those of its InMemoryStore and PostgresStore)."""
    if isinstance(want, Mapping):
        if any(str(k).startswith("$") for k in want):
            return all(_operator(have, op, operand) for op, operand in want.items())
        return isinstance(have, Mapping) and all(_compare(have.get(k), v) for k, v in want.items())
    if isinstance(want, (list, tuple)):
        return (
            isinstance(have, (list, tuple))
            and len(have) == len(want)
            and all(_compare(h, w) for h, w in zip(have, want, strict=False))
        )
    return have == want


def _operator(have: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return have == operand
    if op == "$ne":
        return have != operand
    if have is None:
        return False
    if op == "$gt":
        return float(have) > float(operand)
    if op == "$gte":
        return float(have) >= float(operand)
    if op == "$lt":
        return float(have) < float(operand)
    if op == "$lte":
        return float(have) <= float(operand)
    raise ValueError(f"unsupported filter operator {op}")
