"""The detector suite: every telemetry fault detector the job runs, with its signals, window and
thresholds version, in one list. Adding a detector is adding it here.

Trouble codes and the fleet firmware test are not telemetry detectors; the job runs them itself
(`analytics.job`).
"""

from __future__ import annotations

from analytics.detectors import brakes, tyres
from analytics.job import TelemetryDetector


def default_detectors() -> tuple[TelemetryDetector, ...]:
    return (
        TelemetryDetector(
            tyres.FAULT, tyres.SIGNALS, tyres.WINDOW_S, tyres.detect_tyre_slow_leak, tyres.THRESHOLDS_VERSION
        ),
        TelemetryDetector(
            brakes.FAULT,
            brakes.SIGNALS,
            brakes.WINDOW_S,
            brakes.detect_brake_pad_wear,
            brakes.THRESHOLDS_VERSION,
        ),
    )
