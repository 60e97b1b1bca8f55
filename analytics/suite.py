"""The detector suite: every telemetry fault detector the job runs, with its signals, window and
thresholds version, in one list. Adding a detector is adding it here.

Trouble codes and the fleet firmware test are not telemetry detectors; the job runs them itself
(`analytics.job`).
"""

from __future__ import annotations

from analytics.job import TelemetryDetector


def default_detectors() -> tuple[TelemetryDetector, ...]:
    return ()
