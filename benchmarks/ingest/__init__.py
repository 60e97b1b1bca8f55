"""The ingest benchmarks (`fleet bench ingest`, `inflation`, `autosave`) and the tooling the ingest
fault tests share with them: synthetic fleet data, a plain QoS 1 publisher, and reading ingest's
Prometheus metrics. The ingest service itself never imports them."""

from benchmarks.ingest.drain import BenchConfig, run_ingest_bench

__all__ = ["BenchConfig", "run_ingest_bench"]
