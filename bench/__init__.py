"""Benchmarks of motia_sse against a bare-aiohttp baseline: `make bench`, `python -m bench`."""
