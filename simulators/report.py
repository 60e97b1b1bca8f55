"""The run report: pictures of the routes, the hazards and a few signal traces, plus JSON files.

Owns: drawing with matplotlib (Agg backend, no display needed) into a directory of the user's
choice. Reads only what it is given: the network, the ground truth, the recorded traces and
the summary. Writes routes.png, signals.png, ground_truth.json (written by the caller) and
summary.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from simulators.roads import ROAD_ARTERIAL, ROAD_HIGHWAY, ROAD_LOCAL, RoadNetwork

HAZARD_STYLE = {"pothole": ("o", "tab:red"), "slippery": ("s", "tab:blue"), "junction": ("^", "tab:orange")}


def write_report(
    out_dir: Path,
    network: RoadNetwork,
    truth: dict[str, Any],
    traces: dict[str, np.ndarray],
    traced_ids: list[str],
    summary: dict[str, Any],
) -> list[Path]:
    """Draw the pictures and write summary.json; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [
        _routes(out_dir / "routes.png", network, truth, traces),
        _signals(out_dir / "signals.png", traces, traced_ids, truth),
    ]
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=1))
    return [*files, summary_path]


def _routes(path: Path, net: RoadNetwork, truth: dict[str, Any], traces: dict[str, np.ndarray]) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(9, 9))
    widths = {ROAD_LOCAL: 0.4, ROAD_ARTERIAL: 1.2, ROAD_HIGHWAY: 2.0}
    segs = np.stack(
        [
            np.stack([net.node_x_m[net.edge_src], net.node_y_m[net.edge_src]], axis=1),
            np.stack([net.node_x_m[net.edge_dst], net.node_y_m[net.edge_dst]], axis=1),
        ],
        axis=1,
    )
    lw = np.array([widths.get(int(c), 1.0) for c in net.edge_class])
    ax.add_collection(LineCollection(list(segs / 1000.0), linewidths=lw, colors="0.75", zorder=1))
    if traces.get("x_m") is not None and traces["x_m"].size:
        for j in range(traces["x_m"].shape[1]):
            ax.plot(traces["x_m"][:, j] / 1000.0, traces["y_m"][:, j] / 1000.0, lw=0.9, alpha=0.8, zorder=2)
    for kind, (marker, colour) in HAZARD_STYLE.items():
        hs = [h for h in truth["hazards"] if h["kind"] == kind]
        if not hs:
            continue
        x, y = net.to_xy(np.array([h["lat"] for h in hs]), np.array([h["lon"] for h in hs]))
        repaired = np.array([h["repaired_at_s"] is not None for h in hs])
        ax.scatter(
            x[~repaired] / 1e3,
            y[~repaired] / 1e3,
            marker=marker,
            s=90,
            c=colour,
            zorder=3,
            edgecolors="k",
            label=f"{kind} ({(~repaired).sum()})",
        )
        if repaired.any():
            ax.scatter(
                x[repaired] / 1e3,
                y[repaired] / 1e3,
                marker=marker,
                s=90,
                facecolors="none",
                edgecolors=colour,
                linewidths=2,
                zorder=3,
                label=f"{kind}, repaired mid-run ({repaired.sum()})",
            )
    ax.set_aspect("equal")
    ax.autoscale()
    ax.set_xlabel("east (km)")
    ax.set_ylabel("north (km)")
    ax.set_title(
        f"Routes of {traces['x_m'].shape[1] if traces.get('x_m') is not None and traces['x_m'].size else 0}"
        f" traced vehicles and the hazards (scenario {truth['scenario']})"
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _signals(path: Path, traces: dict[str, np.ndarray], ids: list[str], truth: dict[str, Any]) -> Path:
    import matplotlib.pyplot as plt

    onsets = {f["vehicle_id"]: f for f in truth["faults"]}
    panels = [
        ("speed_kmh", "speed (km/h)"),
        ("coolant_c", "coolant (°C)"),
        ("battery_12v_v", "12 V battery (V)"),
        ("tyre_fl_kpa", "front-left tyre (kPa)"),
        ("soc_pct", "traction SoC (%)"),
    ]
    t_min = traces["t_s"] / 60.0 if traces["t_s"].size else np.zeros(0)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.3 * len(panels)), sharex=True)
    relevant = {
        "coolant_c": {"thermostat_stuck"},
        "battery_12v_v": {"battery_12v_failing", "charging_fault"},
        "tyre_fl_kpa": {"tyre_slow_leak", "sensor_stuck", "sensor_dropout"},
        "speed_kmh": {"sensor_dropout"},
    }
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = traces.get(key)
        if values is None or not values.size:
            continue
        ranked = sorted(
            range(len(ids)),
            key=lambda j: (onsets.get(ids[j], {}).get("kind") not in relevant.get(key, set()), j),
        )
        shown = 0
        for j in ranked:
            col = values[:, j]
            ok = ~np.isnan(col)
            if not ok.any() or shown >= 6:
                continue
            fault = onsets.get(ids[j])
            name = ids[j] + (f" ({fault['kind']})" if fault else "")
            line = ax.plot(t_min[ok], col[ok], lw=0.9, label=name)[0]
            if fault:
                ax.axvline(fault["onset_s"] / 60.0, color=line.get_color(), ls=":", lw=1)
            shown += 1
        ax.set_ylabel(label)
        ax.legend(fontsize=6, loc="upper left", ncol=2)
    axes[-1].set_xlabel("minutes into the run (dotted: fault onset)")
    fig.suptitle("Signal traces of a few vehicles, as sampled (parked vehicles are sampled less often)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
