"""What the KV parts of every SDK client share, without I/O: transformers caches to containers
and back (with the fingerprint check), specs from names, and the JSON calls.

torch, safetensors and transformers are imported on first use, so ``import memsvc`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from memsvc.errors import InvalidRequestError
from memsvc.schemas import CartridgeCompose, KVLookupResult, KVPublic, Page
from memsvc.sdk._base import ApiCall, invalid_from_validation

if TYPE_CHECKING:
    from kv_cartridges.fingerprint import ModelFingerprint
    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import LayerwiseSpec, QuantSpec

__all__ = [
    "DEFAULT_SPEC",
    "KVCalls",
    "build_container",
    "container_to_cache",
    "fingerprint_of",
    "model_id_of",
    "resolve_spec",
    "token_list",
]

#: ``spec`` of a save: a preset name (``"default"``, ``"fast"``, ``"compact"``, ``"tiny"``),
#: ``"raw"`` or ``None`` (stored losslessly), or a ``QuantSpec`` / ``LayerwiseSpec``.
DEFAULT_SPEC = "default"


def resolve_spec(spec: Any) -> QuantSpec | LayerwiseSpec | None:
    from kv_cartridges.quant import PRESETS, LayerwiseSpec, QuantSpec

    if spec is None or spec == "raw":
        return None
    if isinstance(spec, (QuantSpec, LayerwiseSpec)):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]
    raise InvalidRequestError(
        f"spec {spec!r}: a preset ({sorted(PRESETS)}), 'raw', None or a QuantSpec", field="spec"
    )


def fingerprint_of(model: Any) -> ModelFingerprint:
    """The fingerprint of a transformers model (or a ``ModelFingerprint`` as it is)."""
    from kv_cartridges.fingerprint import ModelFingerprint

    if isinstance(model, ModelFingerprint):
        return model
    if not hasattr(model, "config"):
        raise InvalidRequestError(
            f"model must be a transformers model, got {type(model).__name__}", field="model"
        )
    return ModelFingerprint.from_model(model)


def model_id_of(model: Any) -> str:
    return model if isinstance(model, str) else fingerprint_of(model).id


def token_list(token_ids: Any) -> list[int]:
    """Token ids from a list or a ``[T]`` / ``[1, T]`` tensor."""
    if hasattr(token_ids, "tolist"):
        token_ids = token_ids.tolist()
        if token_ids and isinstance(token_ids[0], list):
            if len(token_ids) != 1:
                raise InvalidRequestError("token_ids: one sequence, not a batch", "token_ids")
            token_ids = token_ids[0]
    if not isinstance(token_ids, Sequence) or not all(isinstance(t, int) for t in token_ids):
        raise InvalidRequestError("token_ids must be a list of integers", field="token_ids")
    return list(token_ids)


def build_container(
    cache: Any,
    model: Any,
    token_ids: Any,
    *,
    spec: Any,
    origin: dict[str, Any],
    start_position: int = 0,
) -> KVContainer:
    """A container of a transformers cache; ``token_ids`` are the tokens the cache covers."""
    from kv_cartridges.adapters import cache_layers
    from kv_cartridges.format import FormatError, KVContainer

    fp = fingerprint_of(model)
    ids = None if token_ids is None else token_list(token_ids)
    try:
        layers = cache_layers(cache, fp)
        return KVContainer.build(
            layers,
            fp,
            spec=resolve_spec(spec),
            token_ids=ids,
            start_position=start_position,
            origin=origin,
        )
    except (TypeError, ValueError, FormatError) as exc:
        raise InvalidRequestError(f"cache: {exc}", field="cache") from exc


def container_to_cache(container: KVContainer, model: Any, n_tokens: int | None = None) -> Any:
    """A ``DynamicCache`` for ``model`` (its dtype and device), refusing another model's cache;
    ``n_tokens`` keeps only the first tokens (a longer cache matched on a prefix)."""
    from kv_cartridges.adapters import crop_layers, layers_to_cache

    fp = fingerprint_of(model)
    stored = container.manifest.model
    if stored.id != fp.id:
        differs = [k for k, v in fp.to_dict().items() if stored.to_dict().get(k) != v]
        raise InvalidRequestError(
            f"the KV cache was computed by another model (fingerprint {stored.id}, this model "
            f"{fp.id}; differs in {differs})",
            field="model",
            code="fingerprint_mismatch",
        )
    layers = container.layers()
    if n_tokens is not None:
        layers = crop_layers(layers, n_tokens)
    param = next(model.parameters(), None) if hasattr(model, "parameters") else None
    if param is None:
        return layers_to_cache(layers)
    return layers_to_cache([(k.to(param.device), v.to(param.device)) for k, v in layers],
                           dtype=param.dtype)  # fmt: skip


def _id(value: str) -> str:
    return quote(str(value), safe="")


class KVCalls:
    """The JSON requests of ``client.kv`` and ``client.cartridges`` (uploads and downloads are
    streamed by the clients themselves)."""

    @staticmethod
    def lookup(model_id: str, token_ids: list[int]) -> ApiCall:
        body = {"model_id": model_id, "token_ids": token_ids}
        return ApiCall(
            "POST", "/v1/kv/lookup", json=body, response_type=KVLookupResult, read_only=True
        )

    @staticmethod
    def get(kv_id: str, kind: str | None = None) -> ApiCall:
        base = "/v1/cartridges" if kind == "cartridge" else "/v1/kv"
        return ApiCall("GET", f"{base}/{_id(kv_id)}", response_type=KVPublic)

    @staticmethod
    def delete(kv_id: str, kind: str | None = None) -> ApiCall:
        base = "/v1/cartridges" if kind == "cartridge" else "/v1/kv"
        return ApiCall("DELETE", f"{base}/{_id(kv_id)}")

    @staticmethod
    def content_path(kv_id: str, kind: str | None = None) -> str:
        base = "/v1/cartridges" if kind == "cartridge" else "/v1/kv"
        return f"{base}/{_id(kv_id)}/content"

    @staticmethod
    def list_cartridges(
        model: Any = None, name: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> ApiCall:
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model_id"] = model_id_of(model)
        if name is not None:
            params["name"] = name
        if cursor is not None:
            params["cursor"] = cursor
        return ApiCall("GET", "/v1/cartridges", params=params, response_type=Page[KVPublic])

    @staticmethod
    def compose(
        ids: Sequence[str], name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> ApiCall:
        try:
            request = CartridgeCompose(ids=list(ids), name=name, metadata=metadata or {})
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        body = request.model_dump(mode="json")
        return ApiCall("POST", "/v1/cartridges/compose", json=body, response_type=KVPublic)
