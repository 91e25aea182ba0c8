"""``memsvc cartridge train``: train a KV cartridge on a text file, write it, optionally push it.

The result is a ``memsvc.kv`` container (``QuantSpec()`` by default, ``--raw`` for fp16) and a
loss curve beside it (``<out>.loss.csv``). Self-study data and checkpoints live in
``--work-dir``: running the same command again skips generation and resumes training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["cartridge_app"]

cartridge_app = typer.Typer(help="Trained KV cartridges.", no_args_is_help=True)
console = Console(stderr=True)


@cartridge_app.command("train")
def train(
    corpus: Annotated[
        Path, typer.Option(help="UTF-8 text the cartridge should carry.", exists=True)
    ],
    tokens: Annotated[int, typer.Option(help="Cartridge positions P per layer.")] = 256,
    steps: Annotated[int, typer.Option(help="Training steps (one sample each).")] = 200,
    model: Annotated[
        str, typer.Option(help="smollm2, a transformers folder, or module:function.")
    ] = "smollm2",
    out: Annotated[Path | None, typer.Option(help="Container path (default <corpus>.kv).")] = None,
    raw: Annotated[bool, typer.Option(help="Store fp16 instead of QuantSpec().")] = False,
    samples: Annotated[int, typer.Option(help="Self-study conversations.")] = 48,
    chunk_tokens: Annotated[int, typer.Option(help="Corpus tokens per teacher chunk.")] = 384,
    reply_tokens: Annotated[int, typer.Option(help="Longest self-study answer.")] = 48,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-2,
    seed: Annotated[int, typer.Option(help="Seed of data and sample order.")] = 0,
    work_dir: Annotated[
        Path, typer.Option(help="Self-study data and checkpoints (resume from here).")
    ] = Path(".memsvc/cartridge-work"),
    threads: Annotated[int, typer.Option(help="torch threads on the CPU (0: default).")] = 1,
    name: Annotated[str | None, typer.Option(help="Name when pushed.")] = None,
    url: Annotated[str | None, typer.Option(help="Push to this memsvc server.")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="MEMSVC_API_KEY")] = None,
) -> None:
    """Self-study + context distillation on CORPUS; writes the container, pushes with --url."""
    import hashlib

    import torch

    from kv_cartridges.training import SelfStudyConfig, TrainConfig, train_from_corpus
    from memsvc.bench.cartridge import progress_bar
    from memsvc.service.cartridge_train import cartridge_container, load_causal_lm

    if threads:
        torch.set_num_threads(threads)
    out = out or corpus.with_suffix(corpus.suffix + ".kv")
    text = corpus.read_text()
    lm, tok = load_causal_lm(model)
    ids = torch.tensor(tok.encode(text, add_special_tokens=False))
    console.print(f"{corpus}: {ids.numel()} tokens; P = {tokens}; device {lm.device}")
    with progress_bar(console) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        try:
            trained = train_from_corpus(
                lm, tok, ids, tokens=tokens, work_dir=work_dir, progress=progress,
                selfstudy=SelfStudyConfig(samples=samples, chunk_tokens=chunk_tokens,
                                          reply_tokens=reply_tokens, seed=seed),
                train=TrainConfig(steps=steps, lr=lr, seed=seed),
            )  # fmt: skip
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from exc
    digest = hashlib.sha256(text.encode()).hexdigest()
    container = cartridge_container(lm, trained, quantize=not raw, corpus_id=digest)
    container.write(out)
    curve = out.with_name(out.name + ".loss.csv")
    curve.write_text(
        "step,loss\n" + "".join(f"{i + 1},{x:.6f}\n" for i, x in enumerate(trained.losses))
    )
    losses = trained.losses
    console.print(
        f"loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} steps; self-study "
        f"{trained.selfstudy_seconds:.0f} s, training {trained.train_seconds:.0f} s"
    )
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes) and {curve}")
    if url:
        _push(url, api_key, out, name or corpus.stem)


def _push(url: str, api_key: str | None, path: Path, name: str) -> None:
    from memsvc.errors import MemsvcError
    from memsvc.sdk import MemoryClient

    try:
        with MemoryClient(url, api_key=api_key) as client:
            stored = client.cartridges.push(path, name=name)
    except MemsvcError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(code=1) from exc
    console.print(f"stored as cartridge {stored.id} ({stored.size_bytes:,} bytes)")
    typer.echo(stored.id)
