"""Reading an ingest worker's Prometheus endpoint: counters, and quantiles of a histogram.

Owns: scraping `/metrics` and estimating a quantile from histogram buckets the way PromQL's
histogram_quantile does (linear inside the bucket), for the benchmark's latency figures.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> dict[str, float]:
    """Every sample of the endpoint as {"name{label=value,...}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def scrape_all(ports: Iterable[int]) -> dict[str, float]:
    """Several workers' endpoints combined: counters and histograms summed, and `*_timestamp_seconds`
    gauges (a moment, not an amount) the newest."""
    total: dict[str, float] = {}
    for port in ports:
        for key, value in scrape(port).items():
            if key.endswith("_timestamp_seconds"):
                total[key] = max(total.get(key, value), value)
            else:
                total[key] = total.get(key, 0.0) + value
    return total


def histogram_buckets(samples: dict[str, float], name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a histogram, ascending."""
    prefix = f"{name}_bucket{{le="
    out = []
    for key, value in samples.items():
        if key.startswith(prefix):
            bound = key[len(prefix) : -1]
            out.append((float("inf") if bound == "+Inf" else float(bound), value))
    return sorted(out)


def quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of the observations made between two scrapes; None if there were none."""
    counts = [
        (b, a - p) for (b, a), (_, p) in zip(after, before or [(b, 0.0) for b, _ in after], strict=True)
    ]
    total = counts[-1][1] if counts else 0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in counts:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(
                cumulative - lower_count, 1e-9
            )
        lower_bound, lower_count = bound, cumulative
    return lower_bound
