"""The run report: pictures of the routes, the hazards and a few signal traces, plus JSON files.

Owns: drawing with matplotlib (Agg backend, no display needed) into a directory of the user's
choice. Reads only what it is given: the network, the ground truth, the recorded traces, the
hazard map's sites and the summary. Writes routes.png, signals.png, hazards.png (true and
detected hazards on the road network), ground_truth.json (written by the caller) and summary.json.
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
    *,
    hazard_sites: list[dict[str, Any]] | None = None,
) -> list[Path]:
    """Draw the pictures and write summary.json; returns the files written. With the analysed
    run's hazard sites (`fleet.cli_hazards.load_hazards`) it also draws hazards.png."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [
        _routes(out_dir / "routes.png", network, truth, traces),
        _signals(out_dir / "signals.png", traces, traced_ids, truth),
    ]
    if hazard_sites is not None:
        files.append(_hazards(out_dir / "hazards.png", network, truth, hazard_sites, summary))
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=1))
    return [*files, summary_path]


def _routes(path: Path, net: RoadNetwork, truth: dict[str, Any], traces: dict[str, np.ndarray]) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 9))
    _network(ax, net)
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


def _network(ax: Any, net: RoadNetwork) -> None:
    from matplotlib.collections import LineCollection

    widths = {ROAD_LOCAL: 0.4, ROAD_ARTERIAL: 1.2, ROAD_HIGHWAY: 2.0}
    segs = np.stack(
        [
            np.stack([net.node_x_m[net.edge_src], net.node_y_m[net.edge_src]], axis=1),
            np.stack([net.node_x_m[net.edge_dst], net.node_y_m[net.edge_dst]], axis=1),
        ],
        axis=1,
    )
    lw = np.array([widths.get(int(c), 1.0) for c in net.edge_class])
    ax.add_collection(LineCollection(list(segs / 1000.0), linewidths=lw, colors="0.8", zorder=1))


def _hazards(
    path: Path, net: RoadNetwork, truth: dict[str, Any], sites: list[dict[str, Any]], summary: dict[str, Any]
) -> Path:
    """True hazards (filled: active at the end; hollow: repaired) and the map at the end of the run
    (crosses, and a bar along a slippery stretch); withdrawn sites as small grey plusses."""
    import matplotlib.pyplot as plt

    end_ns = int(truth["start_ts_ns"]) + int(round(float(truth["duration_s"]) * 1e9))
    fig, ax = plt.subplots(figsize=(11.5, 9))
    _network(ax, net)
    for kind, (marker, colour) in HAZARD_STYLE.items():
        _true_hazards(ax, net, [h for h in truth["hazards"] if h["kind"] == kind], kind, marker, colour)
        mine = [s for s in sites if s["kind"] == kind]
        shown = [s for s in mine if any(a <= end_ns and (b is None or end_ns < b) for a, b in s["reported"])]
        withdrawn = [s for s in mine if s["reported"] and s not in shown]
        _sites(ax, net, shown, f"on the map: {kind}", colour, "x", 60)
        _sites(ax, net, withdrawn, f"withdrawn {kind}", "0.4", "+", 40)
    scores = summary.get("hazard_scores", {}).get("kinds", {})
    text = "; ".join(
        f"{k}: P {v['precision'] if v['precision'] is None else round(v['precision'], 2)}"
        f" R {v['recall'] if v['recall'] is None else round(v['recall'], 2)}"
        f" err {v['median_error_m'] if v['median_error_m'] is None else round(v['median_error_m'], 1)} m"
        for k, v in scores.items()
    )
    ax.set_aspect("equal")
    ax.autoscale()
    ax.set_xlabel("east (km)")
    ax.set_ylabel("north (km)")
    ax.set_title(f"Road hazards at the end of the run (scenario {truth['scenario']})\n{text}", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _true_hazards(
    ax: Any, net: RoadNetwork, hs: list[dict[str, Any]], kind: str, marker: str, colour: str
) -> None:
    if not hs:
        return
    x, y = net.to_xy(np.array([h["lat"] for h in hs]), np.array([h["lon"] for h in hs]))
    gone = np.array([h["repaired_at_s"] is not None for h in hs])
    common = {"marker": marker, "s": 110, "zorder": 2}
    ax.scatter(
        x[~gone] / 1e3, y[~gone] / 1e3, c=colour, alpha=0.45, label=f"true {kind} ({(~gone).sum()})", **common
    )
    if gone.any():
        label = f"true {kind}, repaired ({gone.sum()})"
        ax.scatter(x[gone] / 1e3, y[gone] / 1e3, facecolors="none", edgecolors=colour, label=label, **common)


def _sites(
    ax: Any, net: RoadNetwork, group: list[dict[str, Any]], label: str, colour: str, marker: str, size: int
) -> None:
    """Detected sites: a marker at each centre, and a bar along a stretch."""
    if not group:
        return
    x, y = net.to_xy(np.array([s["lat"] for s in group]), np.array([s["lon"] for s in group]))
    ax.scatter(x / 1e3, y / 1e3, marker=marker, s=size, c=colour, zorder=3, label=f"{label} ({len(group)})")
    for s, xi, yi in zip(group, x / 1e3, y / 1e3, strict=True):
        if s.get("half_length_m"):
            a = np.radians(float(s.get("axis_deg") or 0.0))
            dx, dy = s["half_length_m"] * np.sin(a) / 1e3, s["half_length_m"] * np.cos(a) / 1e3
            ax.plot([xi - dx, xi + dx], [yi - dy, yi + dy], c=colour, lw=3, zorder=3)


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
