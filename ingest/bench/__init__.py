"""Benchmark and fault-test tooling for ingest: synthetic fleet data and the `fleet bench ingest`
run (the private Mosquitto is `fleet.mosquitto`). Not used by the ingest service itself."""

from ingest.bench.drain import BenchConfig, run_ingest_bench

__all__ = ["BenchConfig", "run_ingest_bench"]
