"""The A/B slots on disk: one directory pair per ECU under the agent's state directory.

Layout (the systemd unit's sandbox lets the agent write only its state directory, so the slots
live there):

    <state_dir>/ota/ecus/<ECU>/boot.json        the boot marker (edge_agent.ota.bootstate)
    <state_dir>/ota/ecus/<ECU>/a/image          the software image, as the artifact's bytes
    <state_dir>/ota/ecus/<ECU>/a/manifest.json  ecu, version, sha256, length_bytes, hardware_id
    <state_dir>/ota/ecus/<ECU>/b/...

Owns reading and durably writing those files (every change of the marker is a temp file, fsync,
rename, fsync of the directory: edge_agent.ota.durable). Which change to make, and when, is the
install state machine's (edge_agent.ota.install); what a change means is bootstate's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from edge_agent.ota import bootstate
from edge_agent.ota.artifact import Manifest, ManifestError, check_ecu
from edge_agent.ota.bootstate import BootError, BootState
from edge_agent.ota.durable import PART_SUFFIX, copy_durably, file_digest, fsync_dir, write_atomic

IMAGE = "image"
MANIFEST = "manifest.json"
BOOT = "boot.json"


class SlotsCorrupt(OSError):
    """An ECU's boot marker is missing or unreadable although its slots exist."""


class EcuSlots:
    """The two slots of one ECU. Methods raise OSError for the file system."""

    def __init__(self, root: Path, ecu: str) -> None:
        self.ecu = check_ecu(ecu)
        self.dir = root / ecu

    def exists(self) -> bool:
        return (self.dir / BOOT).exists()

    def slot_dir(self, slot: str) -> Path:
        bootstate.other(slot)  # checks the name
        return self.dir / slot

    def image_path(self, slot: str) -> Path:
        return self.slot_dir(slot) / IMAGE

    # -- the marker -----------------------------------------------------------------------------
    def seed(self, factory: Manifest) -> BootState:
        """First use of this ECU: slot a holds the factory software (a manifest without image),
        slot b is empty, and a is booted. Returns the marker. Raises OSError."""
        for slot in bootstate.SLOTS:
            self.slot_dir(slot).mkdir(parents=True, exist_ok=True)
        write_atomic(self.slot_dir("a") / MANIFEST, factory.to_json())
        state = bootstate.initial()
        self.write_boot(state)
        for directory in (self.dir, self.dir.parent, self.dir.parent.parent):  # the new entries
            fsync_dir(directory)
        return state

    def read_boot(self) -> BootState:
        """Raises SlotsCorrupt for a missing or unreadable marker, OSError for the file system."""
        try:
            data = (self.dir / BOOT).read_bytes()
        except FileNotFoundError:
            raise SlotsCorrupt(f"{self.ecu}: no boot marker") from None
        try:
            return BootState.from_json(data)
        except BootError as exc:
            raise SlotsCorrupt(f"{self.ecu}: {exc}") from None

    def write_boot(self, state: BootState) -> None:
        """Replace the marker durably. Raises BootError for a state that breaks the invariant."""
        if not state.is_valid():
            raise BootError(f"refusing to write an invalid boot marker for {self.ecu}: {state}")
        write_atomic(self.dir / BOOT, state.to_json())

    # -- slot contents --------------------------------------------------------------------------
    def manifest(self, slot: str) -> Manifest | None:
        """The slot's manifest; None when it has none or it does not parse."""
        try:
            return Manifest.from_json((self.slot_dir(slot) / MANIFEST).read_bytes())
        except (OSError, ManifestError):
            return None

    def clear(self, slot: str) -> None:
        """Empty the slot durably: the manifest goes first, so a slot never shows a manifest for
        an image that is gone or half written."""
        directory = self.slot_dir(slot)
        directory.mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST, IMAGE, IMAGE + PART_SUFFIX, MANIFEST + PART_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
        fsync_dir(directory)

    def write_image(
        self, slot: str, source: Path, max_bytes: int, after_chunk: Callable[[int], None] | None = None
    ) -> int:
        """Copy `source` into the slot's image durably; returns its length. Raises TooLong beyond
        `max_bytes`, OSError for the file system."""
        directory = self.slot_dir(slot)
        directory.mkdir(parents=True, exist_ok=True)
        return copy_durably(source, directory / IMAGE, max_bytes=max_bytes, after_chunk=after_chunk)

    def write_manifest(self, slot: str, manifest: Manifest) -> None:
        write_atomic(self.slot_dir(slot) / MANIFEST, manifest.to_json())

    def digest(self, slot: str, max_bytes: int) -> tuple[str, int]:
        """SHA-256 and length of the slot's image, read back from the file. Raises OSError."""
        return file_digest(self.image_path(slot), max_bytes=max_bytes)


class Slots:
    """Every ECU's slots under `<state_dir>/ota/ecus`."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "ota" / "ecus"

    def ecu(self, name: str) -> EcuSlots:
        """Raises ManifestError for a name that is not an ECU name."""
        return EcuSlots(self.root, name)

    def ecus(self) -> list[str]:
        """The ECUs that have slots (a directory with a valid name and a boot marker), sorted. A
        directory without a marker was being seeded when the power went: its ECU still runs its
        configured software, and the next install seeds it again."""
        try:
            names = sorted(p.name for p in self.root.iterdir() if (p / BOOT).exists())
        except OSError:
            return []
        valid = []
        for name in names:
            with contextlib.suppress(ManifestError):
                valid.append(check_ecu(name))
        return valid
