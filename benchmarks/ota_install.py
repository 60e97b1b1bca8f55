"""`fleet bench ota`, the vehicle's half: verify-and-install of one artifact against the disk's floor.

Owns: a real TUF repository (`ota.repository`, keys made for the run) with one artifact of
`size_mb` random bytes, served by the real repository server (`ota.server`, uvicorn on loopback),
and the agent's real path over it: `edge_agent.ota.verify.verify_update` (metadata refresh, the
download through HTTP, length and SHA-256; called again once the file is there, it times the
verify alone, which is what the floor's `sha256sum` stands for) and
`edge_agent.ota.install.Installer.offer` (the copy into the inactive slot, its check, the slot
switch, the health check), each in a fresh state directory. The floor is measured on the same
file in the same run: `sha256sum` of it plus `cp` of it, and the same plus `sync` of the copy
(the installer fsyncs what it writes: an install a power cut can lose is no install). Nothing
here is a unit test: the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from contract.software import EcuSoftware
from edge_agent.ota.artifact import VerifiedArtifact
from edge_agent.ota.install import Installer
from edge_agent.ota.preconditions import VehicleConditions
from edge_agent.ota.verify import VerifierConfig, verify_update
from ota.server import serving_in_thread

ECU, HARDWARE_ID, FROM_VERSION, TO_VERSION = "ECM", "ecm-b12", "4.2.0", "4.2.1"
PARKED = VehicleConditions(speed_kmh=0.0, parked_s=600.0, engine_running=False, battery_v=12.6)


def bench_install(size_mb: int = 50, repeats: int = 3, work_dir: Path | None = None) -> dict[str, Any]:
    """Median seconds of the agent's download (with its verify), verify and install, and of the
    floor, over `repeats` runs; the ratios (verify and install against the floor; the download is
    the network's, reported beside them). Raises RuntimeError when the server does not start, OSError."""
    with contextlib.ExitStack() as stack:
        base = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-bench-ota-")))
        artifact = base / "ecm.bin"
        _write_random(artifact, size_mb << 20)
        repo_dir, target, root = publish_repository(base, artifact)
        url = stack.enter_context(serving_in_thread(repo_dir))
        stored = next((repo_dir / "targets").rglob(f"*.{artifact.name}"))
        floors, durable_floors, downloads, verifies, installs, totals = [], [], [], [], [], []
        for k in range(repeats):
            floor, durable = _floor(stored, base / f"floor-{k}")
            download_s, verify_s, install_s = _agent(base / f"vehicle-{k}", url, target, root)
            floors.append(floor)
            durable_floors.append(durable)
            downloads.append(download_s)
            verifies.append(verify_s)
            installs.append(install_s)
            totals.append(verify_s + install_s)
        total, floor_s, durable_s = median(totals), median(floors), median(durable_floors)
        download_s = median(downloads)
        return {
            "artifact_bytes": artifact.stat().st_size,
            "repeats": repeats,
            "download_and_verify_s": round(download_s, 3),
            "verify_s": round(median(verifies), 3),
            "install_s": round(median(installs), 3),
            "verify_and_install_s": round(total, 3),
            "floor_sha256sum_plus_cp_s": round(floor_s, 3),
            "floor_with_sync_s": round(durable_s, 3),
            "ratio_to_floor": round(total / floor_s, 2),
            "ratio_to_floor_with_sync": round(total / durable_s, 2),
            "with_download_ratio_to_floor": round((download_s + median(installs)) / floor_s, 2),
            "target_ratio": 2.0,
        }


def _write_random(path: Path, size_bytes: int) -> None:
    with path.open("wb") as f:
        for _ in range(size_bytes >> 20):
            f.write(os.urandom(1 << 20))


def publish_repository(base: Path, artifact: Path) -> tuple[Path, str, Path]:
    from ota import keys
    from ota.repository import OtaRepository

    keys.init_keys(base / "keys")
    repo = OtaRepository(base / "repo", base / "keys")
    repo.create()
    published = repo.publish(artifact, ecu=ECU, version=TO_VERSION, hardware_ids=(HARDWARE_ID,))
    root = base / "provisioned-root.json"
    root.write_bytes(repo.root_bytes())
    return repo.repo_dir, published.name, root


def _floor(stored: Path, directory: Path) -> tuple[float, float]:
    """Seconds of `sha256sum` + `cp` of the file, and of `sha256sum` + `cp` + `sync` of the copy."""
    directory.mkdir()
    hash_s = _timed(["sha256sum", str(stored)])
    copy_s = _timed(["cp", str(stored), str(directory / "copy.bin")])
    synced = directory / "synced.bin"
    start = time.perf_counter()
    subprocess.run(["cp", str(stored), str(synced)], check=True)
    subprocess.run(["sync", str(synced)], check=True)
    synced_copy_s = time.perf_counter() - start
    shutil.rmtree(directory)
    return hash_s + copy_s, hash_s + synced_copy_s


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def _agent(state_dir: Path, url: str, target: str, root: Path) -> tuple[float, float, float]:
    """(download with verify, verify of the downloaded file, install) seconds of one vehicle's agent,
    from an empty state. The second `verify_update` finds the artifact downloaded: it refreshes the
    metadata and checks length and SHA-256 of the file, which is the verify the floor compares with."""
    config = VerifierConfig(url, root, state_dir / "tuf", state_dir / "downloads")
    start = time.perf_counter()
    verify_update(config, target=target, ecu=ECU, version=TO_VERSION, hardware_id=HARDWARE_ID)
    download_s = time.perf_counter() - start
    start = time.perf_counter()
    verified = verify_update(config, target=target, ecu=ECU, version=TO_VERSION, hardware_id=HARDWARE_ID)
    verify_s = time.perf_counter() - start
    installer = Installer(state_dir, configured=(EcuSoftware(ECU, FROM_VERSION, HARDWARE_ID),))
    artifact = VerifiedArtifact(
        verified.path,
        verified.ecu,
        verified.version,
        verified.sha256,
        verified.length_bytes,
        verified.hardware_id,
    )
    start = time.perf_counter()
    event = installer.offer(artifact, PARKED)
    install_s = time.perf_counter() - start
    if event.running_version != TO_VERSION:
        raise RuntimeError(f"the install did not end on {TO_VERSION}: {event}")
    shutil.rmtree(state_dir)
    return download_s, verify_s, install_s
