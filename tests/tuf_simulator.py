"""An in-memory TUF repository that the agent's verifier fetches from, as python-tuf's own tests do.

It is a `ResumableFetcher`: no network, no files. Metadata is signed when fetched, with the
signers listed for each role, so an attack test changes one thing (a version, an expiry, a signer,
the bytes served) and asserts what the client does. Root versions are published explicitly
(`publish_root`). Artifacts are served with Range support, and can be served wrong on purpose:
`extra_bytes` appended (endless data), `replace_bytes` (tampered), `cut_after` (a connection that
breaks off), `ignore_range` (a server that always answers 200 from byte 0), `seconds_per_chunk` (a server that
trickles, on a simulated clock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlparse

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.exceptions import DownloadHTTPError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from edge_agent.ota.fetcher import ResumableFetcher

BASE_URL = "https://ota.test/"


class RepositorySimulator(ResumableFetcher):
    def __init__(self, root_keys: int = 3, root_threshold: int = 2) -> None:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.safe_expiry = now + dt.timedelta(days=30)
        self.signers: dict[str, list[Signer]] = {}
        self.root_md = Metadata(Root(expires=self.safe_expiry, consistent_snapshot=True))
        for _ in range(root_keys):
            self._add_signer("root")
        self.root.roles["root"].threshold = root_threshold
        for role in ("targets", "snapshot", "timestamp"):
            self._add_signer(role)
        self.md_targets = Metadata(Targets(expires=self.safe_expiry))
        self.md_snapshot = Metadata(Snapshot(expires=self.safe_expiry))
        self.md_timestamp = Metadata(Timestamp(expires=self.safe_expiry))
        self.signed_roots: list[bytes] = []
        self.root_signers: list[Signer] | None = None  # None: every root key signs
        self.artifacts: dict[str, bytes] = {}  # served path (hash-prefixed) -> bytes
        self.extra_bytes = b""
        self.replace_bytes: bytes | None = None
        self.cut_after: int | None = None
        self.ignore_range = False
        self.seconds_per_chunk = 0.0  # simulated time each artifact chunk takes (slow retrieval)
        self.now_s = 0.0
        self.clock = lambda: self.now_s
        self.requests: list[tuple[str, int]] = []  # (path, offset) of every request
        self.publish_root()

    @property
    def root(self) -> Root:
        return self.root_md.signed

    @property
    def targets(self) -> Targets:
        return self.md_targets.signed

    @property
    def snapshot(self) -> Snapshot:
        return self.md_snapshot.signed

    @property
    def timestamp(self) -> Timestamp:
        return self.md_timestamp.signed

    def _add_signer(self, role: str) -> None:
        signer = CryptoSigner.generate_ed25519()
        self.root.add_key(signer.public_key, role)
        self.signers.setdefault(role, []).append(signer)

    def publish_root(self) -> None:
        self.root_md.signatures.clear()
        for signer in self.root_signers if self.root_signers is not None else self.signers["root"]:
            self.root_md.sign(signer, append=True)
        self.signed_roots.append(self.root_md.to_bytes(JSONSerializer()))

    def add_target(
        self,
        data: bytes,
        *,
        ecu: str = "ECM",
        version: str = "4.2.1",
        hardware_ids: tuple[str, ...] = ("ecm-b12",),
    ) -> TargetFile:
        name = f"{ecu}/{version}/{ecu.lower()}.bin"
        custom = {"ecu": ecu, "version": version, "hardware_ids": list(hardware_ids)}
        target = TargetFile.from_data(name, data, ["sha256"])
        target.unrecognized_fields["custom"] = custom
        self.targets.targets[name] = target
        self.artifacts[f"{ecu}/{version}/{target.hashes['sha256']}.{ecu.lower()}.bin"] = data
        return target

    def publish_targets(self) -> None:
        """A new targets version, listed by a new snapshot and timestamp."""
        self.targets.version += 1
        self.update_snapshot()

    def update_snapshot(self) -> None:
        self.snapshot.meta["targets.json"] = MetaFile(self.targets.version)
        self.snapshot.version += 1
        self.update_timestamp()

    def update_timestamp(self) -> None:
        self.timestamp.snapshot_meta = MetaFile(self.snapshot.version)
        self.timestamp.version += 1

    # -- serving ----------------------------------------------------------------------------------

    def fetch_metadata(self, name: str) -> bytes:
        version, _, role = name.partition(".")
        if name == "timestamp":
            role = "timestamp"
        if role == "root":
            number = int(version)
            if number > len(self.signed_roots):
                raise DownloadHTTPError(f"no root version {number}", 404)
            return self.signed_roots[number - 1]
        md = {"targets": self.md_targets, "snapshot": self.md_snapshot, "timestamp": self.md_timestamp}.get(
            role
        )
        if md is None:
            raise DownloadHTTPError(f"no metadata {name}", 404)
        md.signatures.clear()
        for signer in self.signers[role]:
            md.sign(signer, append=True)
        return md.to_bytes(JSONSerializer())

    def _fetch_from(self, url: str, offset: int) -> tuple[int, Iterator[bytes]]:
        path = urlparse(url).path
        self.requests.append((path, offset))
        if path.startswith("/metadata/") and path.endswith(".json"):
            return 0, iter([self.fetch_metadata(path[len("/metadata/") : -len(".json")])])
        data = self.artifacts.get(path[len("/targets/") :])
        if data is None:
            raise DownloadHTTPError(f"no target {path}", 404)
        if self.replace_bytes is not None:
            data = self.replace_bytes
        data += self.extra_bytes
        start = 0 if self.ignore_range else offset
        body = data[start:]
        if self.cut_after is not None:
            body = body[: self.cut_after]
        return start, self._timed(_chunks(body, broken=self.cut_after is not None))

    def _timed(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.now_s += self.seconds_per_chunk
            yield chunk


class BrokenConnection(ConnectionError):
    """The simulated connection broke off."""


def _chunks(body: bytes, *, broken: bool, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]
    if broken:
        raise BrokenConnection("connection reset")
