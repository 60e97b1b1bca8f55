"""Benchmark and fault-test tooling for ingest: a private Mosquitto, synthetic fleet data, and the
`fleet bench ingest` run. Not used by the ingest service itself."""

from ingest.bench.drain import BenchConfig, run_ingest_bench
from ingest.bench.mosquitto import MosquittoProcess, find_mosquitto

__all__ = ["BenchConfig", "MosquittoProcess", "find_mosquitto", "run_ingest_bench"]
