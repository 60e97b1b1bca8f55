"""Verifying an offered update with python-tuf before anything is installed.

Owns: `verify_update`, which refreshes the TUF metadata with `tuf.ngclient.Updater` from the
root.json shipped with the vehicle's provisioning (no trust on first use; newer roots are
accepted only when signed by a threshold of the keys of the one before), finds the offered
target, checks that its custom metadata names the offered ECU and version and that its hardware
ids contain the ECU's own (from the agent's software inventory), downloads the artifact with
resume (`edge_agent.ota.fetcher`, never more bytes than the signed length), and checks length and
SHA-256 before the file gets its final name. The result, `VerifiedTarget`, is what the installer
takes (its fields are the installer's `VerifiedArtifact`'s, plus the target name).

Errors are named for the caller's next step, as in python-tuf: `UpdateRejected` (the data is bad
or not for this vehicle: never install, report `failed` with its `reason`) and
`UpdateUnavailable` (the transport failed: try again later; a partial download is kept and
resumes). Leaves the offer's preconditions and the install to the installer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tuf.api import exceptions
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater, UpdaterConfig

from contract.software import EcuSoftware
from edge_agent.ota.fetcher import HttpFetcher, ResumableFetcher

T = TypeVar("T")

# python-tuf's errors (the data is bad) mapped to the reasons the report carries.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.UnsignedMetadataError, "bad_signature"),
    (exceptions.BadVersionNumberError, "bad_version"),
    (exceptions.ExpiredMetadataError, "expired_metadata"),
    (exceptions.LengthOrHashMismatchError, "hash_mismatch"),
    (exceptions.DownloadLengthMismatchError, "too_long"),
    (exceptions.RepositoryError, "bad_metadata"),
)
REASONS = (
    *(reason for _, reason in _REASONS),
    "unknown_target",
    "wrong_ecu",
    "wrong_version",
    "wrong_hardware_id",
    "unknown_ecu",
)


class UpdateRejected(Exception):
    """The update must not be installed; `reason` (one of REASONS) goes into the `failed` report.
    The python-tuf error, if any, is the `__cause__`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UpdateUnavailable(Exception):
    """The repository could not be reached or stopped sending: try again later (the download
    resumes where it stopped)."""


@dataclass(frozen=True)
class VerifierConfig:
    repository_url: str  # the offer's: metadata under <url>metadata/, artifacts under <url>targets/
    trusted_root: Path  # root.json shipped with the vehicle's provisioning
    metadata_dir: Path  # python-tuf's trusted metadata, under the agent's state directory
    download_dir: Path  # partial and verified artifacts
    timeout_s: float = 30.0


@dataclass(frozen=True)
class VerifiedTarget:
    """A verified artifact file and what the signed metadata says of it."""

    path: Path
    target: str
    ecu: str
    version: str
    sha256: str
    length_bytes: int
    hardware_id: str  # the ECU's, found among the target's hardware ids


def hardware_id_of(software: tuple[EcuSoftware, ...], ecu: str) -> str:
    """The hardware id of `ecu` in the agent's software inventory. Raises UpdateRejected
    (`unknown_ecu`) when the ECU is not listed or has no hardware id: without one, no target can
    be shown to fit it."""
    for entry in software:
        if entry.ecu == ecu and entry.hardware_id:
            return entry.hardware_id
    raise UpdateRejected("unknown_ecu", f"ECU {ecu!r} has no hardware id in the software inventory")


def verify_update(
    config: VerifierConfig,
    *,
    target: str,
    ecu: str,
    version: str,
    hardware_id: str,
    fetcher: ResumableFetcher | None = None,
) -> VerifiedTarget:
    """Refresh the metadata, check the target against the offer and the ECU, fetch and verify the
    artifact (module docstring). Raises UpdateRejected, UpdateUnavailable, OSError (local disk)."""
    own_fetcher = fetcher is None
    fetcher = fetcher or HttpFetcher(config.timeout_s)
    base = config.repository_url if config.repository_url.endswith("/") else config.repository_url + "/"
    try:
        updater = _updater(config, fetcher, base)
        info = _call(lambda: _refreshed_target(updater, target))
        _check_target(info, ecu=ecu, version=version, hardware_id=hardware_id)
        return _download(config, fetcher, info, hardware_id, f"{base}targets/")
    finally:
        if own_fetcher and isinstance(fetcher, HttpFetcher):
            fetcher.close()


def _updater(config: VerifierConfig, fetcher: ResumableFetcher, base: str) -> Updater:
    config.metadata_dir.mkdir(parents=True, exist_ok=True)
    config.download_dir.mkdir(parents=True, exist_ok=True)
    local_root = config.metadata_dir / "root.json"
    # The shipped root only bootstraps: once python-tuf holds a root (possibly a newer one it
    # verified), that root is the trust anchor, so an old shipped root can never roll it back.
    bootstrap = None if local_root.exists() else config.trusted_root.read_bytes()
    return _call(
        lambda: Updater(
            str(config.metadata_dir),
            f"{base}metadata/",
            str(config.download_dir),
            f"{base}targets/",
            fetcher,
            UpdaterConfig(prefix_targets_with_hash=True),
            bootstrap=bootstrap,
        )
    )


def _refreshed_target(updater: Updater, target: str) -> TargetFile:
    updater.refresh()
    info = updater.get_targetinfo(target)
    if info is None:
        raise UpdateRejected("unknown_target", f"the signed targets do not list {target!r}")
    return info


def _check_target(info: TargetFile, *, ecu: str, version: str, hardware_id: str) -> None:
    custom = info.custom if isinstance(info.custom, dict) else {}
    if custom.get("ecu") != ecu:
        raise UpdateRejected("wrong_ecu", f"target {info.path} is for ECU {custom.get('ecu')!r}, not {ecu!r}")
    if custom.get("version") != version:
        raise UpdateRejected(
            "wrong_version", f"target {info.path} is version {custom.get('version')!r}, not {version!r}"
        )
    hardware_ids = custom.get("hardware_ids")
    if not isinstance(hardware_ids, list) or hardware_id not in hardware_ids:
        raise UpdateRejected(
            "wrong_hardware_id", f"target {info.path} is for hardware {hardware_ids!r}, not {hardware_id!r}"
        )
    if "sha256" not in info.hashes:
        raise UpdateRejected("bad_metadata", f"target {info.path} lists no sha256")


def _download(
    config: VerifierConfig, fetcher: ResumableFetcher, info: TargetFile, hardware_id: str, targets_url: str
) -> VerifiedTarget:
    sha256 = info.hashes["sha256"]
    directory, _, base_name = info.path.rpartition("/")
    final = config.download_dir / f"{sha256}.{base_name}"
    part = config.download_dir / f"{sha256}.part"
    result = VerifiedTarget(final, info.path, *_ecu_version(info), sha256, info.length, hardware_id)
    if final.exists() and _verifies(info, final):
        return result
    # As python-tuf names it with consistent snapshots: the hash prefixes the file name.
    url = f"{targets_url}{directory + '/' if directory else ''}{sha256}.{base_name}"
    _call(lambda: fetcher.download_resumable(url, part, info.length))
    try:
        with part.open("rb") as f:
            info.verify_length_and_hashes(f)
    except exceptions.LengthOrHashMismatchError as exc:
        part.unlink()
        raise UpdateRejected("hash_mismatch", f"{info.path}: {exc}") from exc
    os.replace(part, final)
    return result


def _ecu_version(info: TargetFile) -> tuple[str, str]:
    custom = info.custom if isinstance(info.custom, dict) else {}
    return str(custom.get("ecu")), str(custom.get("version"))


def _verifies(info: TargetFile, path: Path) -> bool:
    try:
        with path.open("rb") as f:
            info.verify_length_and_hashes(f)
    except (OSError, exceptions.LengthOrHashMismatchError):
        return False
    return True


def _call(step: Callable[[], T]) -> T:
    """Run a python-tuf step, turning its errors into ours (module docstring)."""
    try:
        return step()
    except UpdateRejected:
        raise
    except (exceptions.RepositoryError, exceptions.DownloadLengthMismatchError) as exc:
        reason = next(r for kind, r in _REASONS if isinstance(exc, kind))
        raise UpdateRejected(reason, str(exc) or type(exc).__name__) from exc
    except exceptions.DownloadError as exc:
        raise UpdateUnavailable(str(exc) or type(exc).__name__) from exc
