"""Benchmarks for minitube: `python -m bench.stream` and `python -m bench.viewers`.

They start real PostgreSQL and Redis (the embedded ones from minitube.embedded),
one real `python -m minitube serve` process, and talk to it over loopback only.
See bench/README.md.
"""
