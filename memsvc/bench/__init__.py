"""Benchmarks run by ``memsvc bench ...``: they print tables and write JSON, they assert nothing."""
