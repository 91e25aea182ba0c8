"""What the KV parts of every SDK client share, without I/O: transformers caches to containers
and back (with the fingerprint check), and specs from names.

torch, safetensors and transformers are imported on first use, so ``import memsvc`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from memsvc.errors import InvalidRequestError

if TYPE_CHECKING:
    from kv_cartridges.fingerprint import ModelFingerprint
    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import LayerwiseSpec, QuantSpec

__all__ = [
    "DEFAULT_SPEC",
    "build_container",
    "container_to_cache",
    "fingerprint_of",
    "model_id_of",
    "resolve_spec",
    "spec_param",
    "token_list",
]

#: ``spec`` of a save: a preset name (``"default"``, ``"fast"``, ``"compact"``, ``"tiny"``),
#: ``"raw"`` or ``None`` (stored losslessly), or a ``QuantSpec`` / ``LayerwiseSpec``.
DEFAULT_SPEC = "default"


def resolve_spec(spec: Any) -> QuantSpec | LayerwiseSpec | None:
    """The codec a ``spec`` argument names (:func:`kv_cartridges.manifest.resolve_spec`, the
    same reading as the server's ``?spec=``); a bad one is an ``InvalidRequestError``."""
    from kv_cartridges.manifest import FormatError
    from kv_cartridges.manifest import resolve_spec as read_spec

    try:
        return read_spec(spec)
    except FormatError as exc:
        raise InvalidRequestError(f"spec: {exc}", field="spec") from exc


def spec_param(spec: Any) -> str | None:
    """``spec`` as the ``?spec=`` parameter (checked here first): a preset's name, or the
    spec's JSON."""
    import json

    resolved = resolve_spec(spec)
    if resolved is None:
        return None
    return (
        spec
        if isinstance(spec, str) and not spec.lstrip().startswith("{")
        else json.dumps(resolved.to_dict())
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
