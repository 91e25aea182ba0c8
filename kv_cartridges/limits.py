"""How large a KV container (or a codec spec) a reader accepts: every count a manifest claims,
checked before anything is allocated for it.

The reader (:mod:`kv_cartridges.format`) always bounds what the file itself implies: the loops
over layers by the tensors the header lists, every shape by the bytes its data offsets cover.
:class:`ContainerLimits` adds explicit bounds on the claims, for a server that takes containers
from anyone (memsvc passes ``MEMSVC_KV__*``); a library reading its own files may pass none.
"""

from __future__ import annotations

from dataclasses import dataclass

from kv_cartridges.manifest import FormatError, Manifest
from kv_cartridges.quant import LayerwiseSpec, QuantSpec

__all__ = ["MAX_HEADER_BYTES", "ContainerLimits"]

MAX_HEADER_BYTES = 64 << 20  # without limits: a header this large is not a container


@dataclass(frozen=True)
class ContainerLimits:
    """The largest claims accepted (memsvc's defaults: ``memsvc.lifecycle.kv.KVConfig``)."""

    max_header_bytes: int  # JSON header (manifest, layer headers, token chain)
    max_layers: int  # model.num_layers
    max_batch: int  # batch
    max_kv_heads: int  # model.num_kv_heads
    max_head_dim: int  # model.head_dim
    max_tokens: int  # n_tokens
    max_start_position: int  # start_position (and start_position + n_tokens - 1)
    max_group_size: int  # spec.group_size (keys: tokens per group; values: channels)
    max_sink_tokens: int  # spec.sink_tokens
    max_window_tokens: int  # spec.window_tokens

    def check_manifest(self, m: Manifest) -> None:
        """Every claimed count within its bound (raises ``FormatError`` naming the field)."""
        for field, value, limit in (
            ("model.num_layers", m.model.num_layers, self.max_layers),
            ("batch", m.batch, self.max_batch),
            ("model.num_kv_heads", m.model.num_kv_heads, self.max_kv_heads),
            ("model.head_dim", m.model.head_dim, self.max_head_dim),
            ("n_tokens", m.n_tokens, self.max_tokens),
            ("start_position", m.start_position, self.max_start_position),
            ("start_position + n_tokens - 1", m.start_position + m.n_tokens - 1,
             self.max_start_position),
        ):  # fmt: skip
            _bounded(field, value, limit)
        spec = m.spec
        if spec is not None:
            self.check_spec(spec, "codec.spec", num_layers=m.model.num_layers)

    def check_spec(
        self, spec: QuantSpec | LayerwiseSpec, field: str, *, num_layers: int | None = None
    ) -> None:
        """A codec spec within bounds; with ``num_layers``, per-layer overrides must name
        layers of that model."""
        overrides = spec.layers if isinstance(spec, LayerwiseSpec) else {}
        limit = self.max_layers if num_layers is None else num_layers
        outside = sorted(i for i in overrides if not 0 <= i < limit)
        if outside:
            raise FormatError(f"{field}: overrides for layers {outside[:5]}; there are {limit}")
        base = spec.base if isinstance(spec, LayerwiseSpec) else spec
        for layer_spec in (base, *(spec.for_layer(i) for i in overrides)):
            for name, value, bound in (
                ("group_size", layer_spec.group_size, self.max_group_size),
                ("sink_tokens", layer_spec.sink_tokens, self.max_sink_tokens),
                ("window_tokens", layer_spec.window_tokens, self.max_window_tokens),
            ):
                _bounded(f"{field}.{name}", value, bound)


def _bounded(field: str, value: int, limit: int) -> None:
    if value > limit:
        raise FormatError(f"{field} is {value}; the limit is {limit}")
