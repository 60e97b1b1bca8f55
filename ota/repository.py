"""The TUF repository on disk: metadata signed with python-tuf's Metadata API, and the artifacts.

Owns: creating the repository (root with a threshold of keys, empty targets), publishing an
artifact as a target with custom metadata (ECU, version, hardware ids), and re-signing the short-
lived roles (`refresh`). Every change bumps the versions and expiries of targets, snapshot and
timestamp as needed, signs, verifies the signatures against root before writing (a wrong key never
reaches a client), and switches atomically: artifact first, then targets, snapshot, and the
timestamp last, each file written whole and renamed. A lock file serialises writers (a publish and
a periodic refresh). Leaves serving to `ota.server`, keys to `ota.keys`, lifetimes to `ota.expiry`.

Layout (consistent snapshots, so a client mid-update always finds the versions it was told of):

    metadata/N.root.json  metadata/root.json (the newest root: ship it with the agents)
    metadata/N.targets.json  metadata/N.snapshot.json  metadata/timestamp.json
    targets/<ECU>/<version>/<sha256>.<file name>   (target name <ECU>/<version>/<file name>)

The snapshot lists targets with length and SHA-256, the timestamp lists the snapshot likewise, so a
client never reads more metadata bytes than the signed listing names.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from contract.software import ECU_NAME, MAX_VERSION_LEN
from ota import keys
from ota.expiry import ExpiryPolicy, refresh_plan, root_expiring

# Versions and file names become path segments of the target name and of the served URL.
PATH_SEGMENT = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,127}")
_HASH_CHUNK_BYTES = 1 << 20


class RepositoryError(RuntimeError):
    """The repository cannot do what was asked (not created, created already, a target name taken
    by other content, an invalid field); the message says which."""


@dataclass(frozen=True)
class PublishedTarget:
    name: str
    ecu: str
    version: str
    hardware_ids: tuple[str, ...]
    length_bytes: int
    sha256: str
    targets_version: int
    changed: bool  # False: the same artifact was published under this name before

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "ecu": self.ecu,
            "version": self.version,
            "hardware_ids": list(self.hardware_ids),
            "length_bytes": self.length_bytes,
            "sha256": self.sha256,
            "targets_version": self.targets_version,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class RefreshResult:
    resigned: dict[str, int]  # role -> its new version
    expires: dict[str, dt.datetime]  # every role's expiry after the refresh
    root_expiring: bool  # root expires within 30 days: sign a new one with the offline keys

    def as_json(self) -> dict[str, Any]:
        return {
            "resigned": self.resigned,
            "expires": {role: at.isoformat() for role, at in self.expires.items()},
            "root_expiring": self.root_expiring,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OtaRepository:
    """One repository directory, signed with the keys of `keys_dir` (never inside `repo_dir`;
    None: read-only use)."""

    def __init__(
        self,
        repo_dir: Path,
        keys_dir: Path | None = None,
        *,
        passphrase: str | None = None,
        policy: ExpiryPolicy | None = None,
    ) -> None:
        self.repo_dir = repo_dir.resolve()
        self.keys_dir = None if keys_dir is None else keys_dir.resolve()
        if self.keys_dir is not None and self.keys_dir.is_relative_to(self.repo_dir):
            raise RepositoryError(f"the key directory {keys_dir} must not be inside the served {repo_dir}")
        self._passphrase = passphrase
        self.policy = policy or ExpiryPolicy()
        self.metadata_dir = self.repo_dir / "metadata"
        self.targets_dir = self.repo_dir / "targets"

    # -- creation ---------------------------------------------------------------------------------

    def create(self, now: dt.datetime | None = None) -> int:
        """Create root (ROOT_THRESHOLD of ROOT_KEYS root keys), empty targets, snapshot and
        timestamp. Returns the root version (1). Raises RepositoryError when the repository exists,
        SigningKeyError for unusable keys."""
        now = now or _now()
        with self._locked():
            if any(self.metadata_dir.glob("*.json")):
                raise RepositoryError(f"{self.metadata_dir} already holds metadata")
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            root = Root(expires=self.policy.expires("root", now), consistent_snapshot=True)
            root_signers = self._signers("root")
            for signer in root_signers:
                root.add_key(signer.public_key, Root.type)
            root.roles[Root.type].threshold = keys.ROOT_THRESHOLD
            for role in keys.ONLINE_ROLES:
                for signer in self._signers(role):
                    root.add_key(signer.public_key, role)
            root_md = Metadata(root)
            for signer in root_signers:
                root_md.sign(signer, append=True)
            root_md.verify_delegate(Root.type, root_md)
            data = _serialize(root_md)
            _write_atomic(self.metadata_dir / "1.root.json", data)
            _write_atomic(self.metadata_dir / "root.json", data)
            targets = Metadata(Targets(expires=now))
            targets_data = self._sign(targets, "targets", now, bump=False)
            _write_atomic(self.metadata_dir / "1.targets.json", targets_data)
            snapshot = Metadata(Snapshot(expires=now))
            snapshot.signed.meta["targets.json"] = _metafile(1, targets_data)
            snapshot_data = self._sign(snapshot, "snapshot", now, bump=False)
            _write_atomic(self.metadata_dir / "1.snapshot.json", snapshot_data)
            timestamp = Metadata(Timestamp(expires=now, snapshot_meta=_metafile(1, snapshot_data)))
            _write_atomic(
                self.metadata_dir / "timestamp.json", self._sign(timestamp, "timestamp", now, bump=False)
            )
        return 1

    # -- publishing -------------------------------------------------------------------------------

    def publish(
        self,
        artifact: Path,
        *,
        ecu: str,
        version: str,
        hardware_ids: tuple[str, ...],
        file_name: str | None = None,
        now: dt.datetime | None = None,
    ) -> PublishedTarget:
        """Add `artifact` as target `<ecu>/<version>/<file name>` whose custom metadata names the ECU,
        the version and the hardware ids it may be installed on; re-sign targets, snapshot and
        timestamp. Publishing the same bytes under the same name again changes nothing. Raises
        RepositoryError (invalid field, name taken by other bytes, no repository), OSError when the
        artifact cannot be read, SigningKeyError for unusable keys."""
        now = now or _now()
        file_name = file_name or artifact.name
        _check_fields(ecu, version, hardware_ids, file_name)
        name = f"{ecu}/{version}/{file_name}"
        with self._locked():
            targets = self._current("targets")
            directory = self.targets_dir / ecu / version
            directory.mkdir(parents=True, exist_ok=True)
            # Hash the copy, not the source: what is served is exactly what was hashed.
            copy, sha256, length = _copy_hashed(artifact, directory)
            existing = targets.signed.targets.get(name)
            if existing is not None:
                copy.unlink()
                if existing.hashes.get("sha256") != sha256 or existing.length != length:
                    raise RepositoryError(f"target {name} exists with other content; publish a new version")
                return _published(existing, targets.signed.version, changed=False)
            os.replace(copy, directory / f"{sha256}.{file_name}")
            custom = {"ecu": ecu, "version": version, "hardware_ids": sorted(set(hardware_ids))}
            target = TargetFile(length, {"sha256": sha256}, name, {"custom": custom})
            targets.signed.targets[name] = target
            self._write_chain(targets, now)
            return _published(target, targets.signed.version, changed=True)

    def refresh(self, now: dt.datetime | None = None) -> RefreshResult:
        """Re-sign what `ota.expiry.refresh_plan` says (the timestamp always). Meant for a periodic
        job, at least twice per timestamp lifetime. Raises RepositoryError without a repository,
        SigningKeyError for unusable keys."""
        now = now or _now()
        with self._locked():
            current = {role: self._current(role) for role in ("root", "targets", "snapshot", "timestamp")}
            plan = refresh_plan({r: md.signed.expires for r, md in current.items()}, now, self.policy)
            if "targets" in plan:
                self._write_chain(current["targets"], now)
            elif "snapshot" in plan:
                self._write_snapshot_and_timestamp(current["targets"], now)
            else:
                self._write_timestamp(current["snapshot"], self._read_versioned("snapshot"), now)
            after = {
                role: self._current(role).signed for role in ("root", "targets", "snapshot", "timestamp")
            }
        return RefreshResult(
            resigned={role: after[role].version for role in plan},
            expires={role: signed.expires for role, signed in after.items()},
            root_expiring=root_expiring(after["root"].expires, now),
        )

    def list_targets(self) -> list[dict[str, Any]]:
        """Every target with its length, SHA-256 and custom metadata. Raises RepositoryError."""
        targets = self._current("targets").signed.targets
        return [
            {"target": name, "length_bytes": t.length, "sha256": t.hashes.get("sha256"), **(t.custom or {})}
            for name, t in sorted(targets.items())
        ]

    def root_bytes(self) -> bytes:
        """The newest root metadata, as the agents are provisioned with it. Raises RepositoryError."""
        path = self.metadata_dir / "root.json"
        if not path.is_file():
            raise RepositoryError(f"no repository in {self.repo_dir} (create it with `fleet ota init`)")
        return path.read_bytes()

    # -- internals --------------------------------------------------------------------------------

    def _signers(self, role: str) -> list[Signer]:
        if self.keys_dir is None:
            raise RepositoryError("signing needs the key directory (--keys-dir)")
        return list(keys.load_signers(self.keys_dir, role, self._passphrase))

    def _root(self) -> Metadata[Root]:
        return Metadata[Root].from_bytes(self.root_bytes())

    def _sign(self, md: Metadata[Any], role: str, now: dt.datetime, *, bump: bool = True) -> bytes:
        """Bump version (unless new) and expiry, sign with the role's keys, verify against root,
        serialise."""
        if bump:
            md.signed.version += 1
        md.signed.expires = self.policy.expires(role, now)
        md.signatures.clear()
        for signer in self._signers(role):
            md.sign(signer, append=True)
        self._root().verify_delegate(role, md)
        return _serialize(md)

    def _write_chain(self, targets: Metadata[Targets], now: dt.datetime) -> None:
        data = self._sign(targets, "targets", now)
        _write_atomic(self.metadata_dir / f"{targets.signed.version}.targets.json", data)
        self._write_snapshot_and_timestamp(targets, now, data)

    def _write_snapshot_and_timestamp(
        self, targets: Metadata[Targets], now: dt.datetime, targets_data: bytes | None = None
    ) -> None:
        if targets_data is None:
            targets_data = self._read_versioned("targets")
        snapshot = self._current("snapshot")
        snapshot.signed.meta["targets.json"] = _metafile(targets.signed.version, targets_data)
        data = self._sign(snapshot, "snapshot", now)
        _write_atomic(self.metadata_dir / f"{snapshot.signed.version}.snapshot.json", data)
        self._write_timestamp(snapshot, data, now)

    def _write_timestamp(self, snapshot: Metadata[Snapshot], snapshot_data: bytes, now: dt.datetime) -> None:
        timestamp = self._current("timestamp")
        timestamp.signed.snapshot_meta = _metafile(snapshot.signed.version, snapshot_data)
        _write_atomic(self.metadata_dir / "timestamp.json", self._sign(timestamp, "timestamp", now))

    def _current_version(self, role: str) -> int:
        versions = [int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob(f"[0-9]*.{role}.json")]
        if not versions:
            raise RepositoryError(
                f"no {role} metadata in {self.metadata_dir} (create it with `fleet ota init`)"
            )
        return max(versions)

    def _read_versioned(self, role: str) -> bytes:
        return (self.metadata_dir / f"{self._current_version(role)}.{role}.json").read_bytes()

    def _current(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            path = self.metadata_dir / "timestamp.json"
            if not path.is_file():
                raise RepositoryError(f"no timestamp metadata in {self.metadata_dir}")
            return Metadata.from_bytes(path.read_bytes())
        return Metadata.from_bytes(self._read_versioned(role))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.repo_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _check_fields(ecu: str, version: str, hardware_ids: tuple[str, ...], file_name: str) -> None:
    if ECU_NAME.fullmatch(ecu) is None:
        raise RepositoryError(f"ECU {ecu!r} must match {ECU_NAME.pattern}")
    for what, value in (("version", version), ("file name", file_name)):
        if PATH_SEGMENT.fullmatch(value) is None or (what == "version" and len(value) > MAX_VERSION_LEN):
            raise RepositoryError(f"{what} {value!r} must match {PATH_SEGMENT.pattern}")
    if not hardware_ids:
        raise RepositoryError(
            "at least one hardware id is needed: a target names the hardware it is built for"
        )
    for hardware_id in hardware_ids:
        if not hardware_id or len(hardware_id) > MAX_VERSION_LEN or not hardware_id.isprintable():
            raise RepositoryError(f"hardware id {hardware_id!r} must be printable text of 1 to 64 characters")


def _published(target: TargetFile, targets_version: int, *, changed: bool) -> PublishedTarget:
    custom = target.custom or {}
    return PublishedTarget(
        name=target.path,
        ecu=custom.get("ecu", ""),
        version=custom.get("version", ""),
        hardware_ids=tuple(custom.get("hardware_ids", ())),
        length_bytes=target.length,
        sha256=target.hashes["sha256"],
        targets_version=targets_version,
        changed=changed,
    )


def _metafile(version: int, data: bytes) -> MetaFile:
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def _serialize(md: Metadata[Any]) -> bytes:
    return md.to_bytes(JSONSerializer(compact=False))


def _copy_hashed(source: Path, directory: Path) -> tuple[Path, str, int]:
    """Copy `source` into a temporary file of `directory` (fsynced, mode 0644) and hash the bytes
    copied: (the copy, SHA-256 hex, length)."""
    digest, length = hashlib.sha256(), 0
    with (
        tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-", delete=False) as tmp,
        source.open("rb") as src,
    ):
        while chunk := src.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
            length += len(chunk)
            tmp.write(chunk)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)
    return Path(tmp.name), digest.hexdigest(), length


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)
