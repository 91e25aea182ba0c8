"""A tiny random Llama and a byte-level tokenizer: training tests run in seconds."""

from __future__ import annotations

import pytest
import torch

CORPUS = "\n".join(
    f"[{d + 1} May 2023] {['Ana', 'Ben'][d % 2]}: I fed the {['cat', 'fox', 'owl'][d % 3]} "
    f"{d * 7 % 13 + 2} times."
    for d in range(24)
)


class ByteTokenizer:
    """UTF-8 bytes as token ids (vocab 256): enough for self-study's needs."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode())

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode(errors="replace")


def tiny_model(seed: int = 0) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.5,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def tok() -> ByteTokenizer:
    return ByteTokenizer()


@pytest.fixture
def model() -> torch.nn.Module:
    return tiny_model()


@pytest.fixture
def corpus_ids(tok: ByteTokenizer) -> torch.Tensor:
    return torch.tensor(tok.encode(CORPUS))


def tiny_model_and_tokenizer() -> tuple[torch.nn.Module, ByteTokenizer]:
    """The service's model loader in tests (``MEMSVC_CARTRIDGE_TRAINING__MODEL``)."""
    return tiny_model(), ByteTokenizer()
