"""``memsvc bench ...``: benchmarks that print tables (never timed tests).

Each command imports its benchmark module lazily so ``memsvc --help`` stays fast.
"""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Benchmarks (see docs/benchmarks.md).", no_args_is_help=True)
