"""The TUF signing keys, kept in a key directory outside the repository that is served.

Owns: creating the keys (`fleet ota keys init`), loading them as signers, and refusing key files
that others could read. Layout of the key directory (mode 0700, each file 0600, PEM PKCS#8,
Ed25519):

    root-1.pem root-2.pem root-3.pem   the root role: ROOT_THRESHOLD of these sign every root
    targets.pem snapshot.pem timestamp.pem

With `passphrase` set (the CLI reads FLEET_OTA_KEY_PASSPHRASE) the files are encrypted with it.
No key, passphrase or key material is ever logged or printed. Leaves the metadata to
`ota.repository`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner

ROOT_KEYS = 3
ROOT_THRESHOLD = 2
ONLINE_ROLES = ("targets", "snapshot", "timestamp")


class SigningKeyError(RuntimeError):
    """A key directory or key file that cannot be used (missing, exists already, readable by others,
    wrong passphrase); the message says which file and why, never its content."""


def key_files(role: str) -> tuple[str, ...]:
    """The file names of a role's keys."""
    if role == "root":
        return tuple(f"root-{i}.pem" for i in range(1, ROOT_KEYS + 1))
    if role in ONLINE_ROLES:
        return (f"{role}.pem",)
    raise ValueError(f"unknown role {role!r}")


ALL_KEY_FILES = tuple(name for role in ("root", *ONLINE_ROLES) for name in key_files(role))


def init_keys(keys_dir: Path, passphrase: str | None = None) -> list[Path]:
    """Create every key in `keys_dir` (created 0700 if missing). Raises SigningKeyError if any key file
    exists already (keys are never overwritten) or the directory is open to others."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(keys_dir, directory=True)
    existing = [n for n in ALL_KEY_FILES if (keys_dir / n).exists()]
    if existing:
        raise SigningKeyError(f"{keys_dir} already holds {', '.join(existing)}: keys are never overwritten")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    written = []
    for name in ALL_KEY_FILES:
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        path = keys_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        written.append(path)
    return written


def load_signers(keys_dir: Path, role: str, passphrase: str | None = None) -> list[CryptoSigner]:
    """The signers of `role`. Raises SigningKeyError when a key file is missing, readable by group or
    others, or cannot be decrypted."""
    _check_private(keys_dir, directory=True)
    signers = []
    for name in key_files(role):
        path = keys_dir / name
        if not path.is_file():
            raise SigningKeyError(f"missing key file {path} (create the keys with `fleet ota keys init`)")
        _check_private(path, directory=False)
        try:
            key = serialization.load_pem_private_key(
                path.read_bytes(), passphrase.encode() if passphrase else None
            )
        except (ValueError, TypeError) as exc:
            # The exception names the problem (no passphrase, wrong one), never the key.
            raise SigningKeyError(f"cannot load {path}: {type(exc).__name__}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key")
        signers.append(CryptoSigner(key))
    return signers


def _check_private(path: Path, *, directory: bool) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SigningKeyError(f"cannot read {path}: {exc.strerror}") from None
    if directory and not stat.S_ISDIR(mode):
        raise SigningKeyError(f"{path} is not a directory")
    if mode & 0o077:
        wanted = "0700" if directory else "0600"
        raise SigningKeyError(f"{path} is open to group or others (mode {mode & 0o777:o}); chmod it {wanted}")
