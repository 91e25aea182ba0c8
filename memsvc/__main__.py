"""``python -m memsvc`` runs the CLI."""

from memsvc.cli import main

main()
