"""Self-study: synthetic conversations about a corpus, written by the model itself.

For each batch of samples: take a random chunk of the corpus, put it in context (the *teacher*
context), ask one of the seed prompts (questions, summaries, facts, ...) and let the model write
``batch`` sampled answers with the chunk in view. The student later sees only
``user prompt + answer`` after the cartridge; its targets are the teacher's top-k next-token
distributions at each of those positions, which the teacher computed while writing the answer
(no second pass).

Everything is seeded per batch (``seed``, first index), so the data set is the same on every run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from kv_cartridges.training.cartridge import kv_to_cache
from kv_cartridges.training.generate import generate

__all__ = [
    "SEED_PROMPTS",
    "ChatFormat",
    "Sample",
    "SelfStudyConfig",
    "TextEncoder",
    "load_samples",
    "make_samples",
    "save_samples",
]

log = logging.getLogger(__name__)

SEED_PROMPTS: tuple[str, ...] = (
    "Repeat the conversation above, line by line.",
    "Rewrite the conversation above as a list of facts, each with its date and who said it.",
    "Restate the conversation above in your own words, keeping every name, date and number.",
    "Rewrite the conversation above as YAML: one entry per message with date, speaker, content.",
    "Summarize the conversation above in a few sentences.",
    "What dates and events are mentioned in the conversation above?",
    "What do we learn about each person in the conversation above?",
    "Which plans, hobbies and feelings do the speakers mention above?",
)
# Question-answer batches (the paper's two roles): with the chunk in view the model first asks a
# question, then answers it as a user question; the student learns the whole exchange, which is
# how memsvc's users ask.
QA_PROMPT = (
    "Ask one short question about a specific detail of the conversation above: a date, a name, "
    "a place, an event or a number. Write only the question."
)


class TextEncoder(Protocol):
    """What self-study needs of a tokenizer (a transformers tokenizer qualifies)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


@dataclass(frozen=True)
class ChatFormat:
    """How the corpus and a user turn are laid out (default: ChatML, as SmolLM2 uses)."""

    context_prefix: str = "<|im_start|>system\n"  # before the corpus
    context_suffix: str = "<|im_end|>\n"  # after it
    user: str = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    stop: str = "<|im_end|>"  # ends an answer

    def ids(self, tok: TextEncoder, text: str) -> torch.Tensor:
        return torch.tensor(tok.encode(text, add_special_tokens=False), dtype=torch.long)

    def context(self, tok: TextEncoder, corpus_ids: torch.Tensor) -> torch.Tensor:
        """``prefix + corpus + suffix`` ids: the ICL context (a cartridge starts from its KV)."""
        pre, suf = self.ids(tok, self.context_prefix), self.ids(tok, self.context_suffix)
        return torch.cat([pre, corpus_ids.long(), suf])

    def question(self, tok: TextEncoder, prompt: str) -> torch.Tensor:
        return self.ids(tok, self.user.format(prompt=prompt))


@dataclass(frozen=True)
class SelfStudyConfig:
    """Synthetic data settings; each default is small enough for a CPU run."""

    samples: int = 64  # synthetic conversations
    chunk_tokens: int = 512  # corpus tokens the teacher sees per sample
    reply_tokens: int = 48  # longest answer written
    top_k: int = 20  # teacher distribution kept per position
    temperature: float = 0.5  # sampling temperature of the answers
    qa_fraction: float = 0.5  # share of batches written as question -> answer (QA_PROMPT)
    batch: int = 4  # answers per chunk, generated together (one chunk prefill for all)
    seed: int = 0


@dataclass
class Sample:
    """One conversation: ``ids`` (n,) the student reads; targets for positions 0..n-2."""

    ids: torch.Tensor  # (n,) user prompt + answer
    topk_ids: torch.Tensor  # (n-1, K) teacher's most likely next tokens
    topk_logp: torch.Tensor  # (n-1, K) their log-probabilities, renormalised over the K


def make_samples(
    model: nn.Module,
    tok: TextEncoder,
    corpus_ids: torch.Tensor,
    config: SelfStudyConfig = SelfStudyConfig(),
    *,
    fmt: ChatFormat = ChatFormat(),
    prompts: tuple[str, ...] = SEED_PROMPTS,
    on_sample: Callable[[int], None] | None = None,
) -> list[Sample]:
    """Generate ``config.samples`` self-study conversations about ``corpus_ids`` (1-D ids)."""
    if corpus_ids.dim() != 1 or corpus_ids.numel() == 0:
        raise ValueError(f"corpus_ids must be non-empty 1-D ids, got {tuple(corpus_ids.shape)}")
    stop = fmt.ids(tok, fmt.stop).tolist()
    chunk = min(config.chunk_tokens, corpus_ids.numel())
    samples: list[Sample] = []
    for index, first in enumerate(range(0, config.samples, config.batch)):
        # A batch shares one chunk and one seed prompt: the chunk is prefilled once (the bulk of
        # the cost) and the answers differ by sampling.
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + first)
        rows = min(config.batch, config.samples - first)
        qa = int((index + 1) * config.qa_fraction) > int(index * config.qa_fraction)
        prompt = (
            QA_PROMPT if qa else prompts[int(torch.randint(0, len(prompts), (1,), generator=g))]
        )
        start = int(torch.randint(0, corpus_ids.numel() - chunk + 1, (1,), generator=g))
        question = fmt.question(tok, prompt)  # (Q,)
        kv = _prefill(model, fmt.context(tok, corpus_ids[start : start + chunk]))
        out = generate(
            model,
            question.expand(rows, -1),  # (rows, Q)
            cache=_rows(kv, rows),
            max_new_tokens=config.reply_tokens,
            temperature=config.temperature,
            stop=stop,
            generator=g,
            keep_from=0,
        )
        for b in range(rows):
            asked = _question_text(tok, out.tokens[b], stop) if qa else None
            if asked:  # second role: answer the model's own question, the chunk still in view
                user = fmt.question(tok, asked)  # (Q',)
                reply = generate(
                    model, user, cache=_rows(kv, 1), max_new_tokens=config.reply_tokens,
                    temperature=config.temperature, stop=stop, generator=g, keep_from=0,
                )  # fmt: skip
                steps = torch.cat([reply.prompt_logprobs[0], reply.logprobs[0][1:]])
                ids = torch.cat([user, torch.tensor(reply.tokens[0], dtype=torch.long)])
                samples.append(_sample(ids, steps, config.top_k))
                continue
            # after each question token (the last one predicts answer[0], which is also
            # logprobs[0]), then after each answer token but the last
            steps = torch.cat([out.prompt_logprobs[b], out.logprobs[b][1:]])
            ids = torch.cat([question, torch.tensor(out.tokens[b], dtype=torch.long)])
            samples.append(_sample(ids, steps, config.top_k))
        if on_sample is not None:
            on_sample(len(samples))
    return samples


def _question_text(tok: TextEncoder, tokens: list[int], stop: list[int]) -> str | None:
    """The first line of a generated question, or None when there is no question to ask."""
    if tokens[-len(stop) :] == stop:
        tokens = tokens[: -len(stop)]
    line = next((x.strip() for x in tok.decode(tokens).splitlines() if x.strip()), "")
    line = line.removeprefix("Q:").strip()
    return line if line.endswith("?") and len(line) > 8 else None


@torch.inference_mode()
def _prefill(model: nn.Module, context: torch.Tensor) -> list:
    """The teacher's KV of ``context`` (C,): per layer (k, v), each (1, H, C, D)."""
    device = next(model.parameters()).device
    out = model(context.unsqueeze(0).to(device), use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in out.cache.layers]


def _rows(kv: list, rows: int) -> object:
    """A fresh cache holding ``kv`` repeated for ``rows`` sequences (updates never touch kv)."""
    return kv_to_cache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv])


def _sample(ids: torch.Tensor, logprobs: torch.Tensor, k: int) -> Sample:
    assert logprobs.shape[0] == ids.numel() - 1, f"{logprobs.shape[0]} steps for {ids.numel()} ids"
    top, idx = logprobs.topk(k, dim=-1)  # (n-1, K)
    return Sample(ids.cpu(), idx.cpu(), top.log_softmax(-1).cpu())


def save_samples(path: Path, samples: list[Sample], config: SelfStudyConfig) -> None:
    """Write the data set as one safetensors file (teacher targets cached for later runs)."""
    import json

    tensors = {}
    for i, s in enumerate(samples):
        tensors |= {f"{i}.ids": s.ids, f"{i}.topk_ids": s.topk_ids, f"{i}.topk_logp": s.topk_logp}
    meta = {
        "format": "memsvc.selfstudy",
        "count": str(len(samples)),
        "config": json.dumps(asdict(config)),
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)


def load_samples(path: Path) -> list[Sample]:
    """Read what :func:`save_samples` wrote."""
    t = load_file(str(path))
    n = len([k for k in t if k.endswith(".ids")])
    return [Sample(t[f"{i}.ids"], t[f"{i}.topk_ids"], t[f"{i}.topk_logp"]) for i in range(n)]
