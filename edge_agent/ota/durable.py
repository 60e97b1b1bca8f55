"""Files that survive a power cut: atomic replacement, durable copies, and streaming SHA-256.

Owns the order of the system calls that makes a write durable on Linux: write a temporary file in
the same directory, fsync it, rename it over the target, then fsync the directory so that the
rename itself is on disk. A reader therefore sees either the old file or the new one, never a
mixture. What is written, and when, belongs to `slots` and `install`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

CHUNK_BYTES = 8 * 1024 * 1024
PART_SUFFIX = ".part"


class TooLong(OSError):
    """A source holds more bytes than it may (the artifact grew, or is endless)."""


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (creations, renames, removals) durable. Raises OSError."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` durably (temp file, fsync, rename, fsync the directory). Raises
    OSError, and then leaves no temporary file behind."""
    tmp = path.with_name(path.name + PART_SUFFIX)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def copy_durably(
    source: Path,
    target: Path,
    *,
    max_bytes: int,
    after_chunk: Callable[[int], None] | None = None,
) -> int:
    """Copy `source` to `target` durably, through `target.part` (kernel-side copy, fsync, rename,
    fsync the directory); returns the bytes copied. `after_chunk(bytes_so_far)` runs after each
    chunk (the power-cut tests stop the process there). Raises TooLong when `source` holds more
    than `max_bytes` (nothing is left at `target`), OSError for the file system."""
    part = target.with_name(target.name + PART_SUFFIX)
    copied = 0
    try:
        with open(source, "rb") as src, open(part, "wb") as dst:
            while True:
                want = min(CHUNK_BYTES, max_bytes + 1 - copied)
                n = _copy_chunk(src.fileno(), dst.fileno(), copied, want)
                if n == 0:
                    break
                copied += n
                if copied > max_bytes:
                    raise TooLong(f"{source} holds more than the {max_bytes} bytes it may")
                if after_chunk is not None:
                    after_chunk(copied)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(part, target)
    except OSError:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    fsync_dir(target.parent)
    return copied


def _copy_chunk(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    """Up to `count` bytes from `src_fd` at `offset`, appended to `dst_fd` (sendfile where the
    kernel can, else read and write)."""
    if count <= 0:
        return 0
    try:
        return os.sendfile(dst_fd, src_fd, offset, count)
    except OSError as exc:  # e.g. EINVAL on a file system without sendfile support
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    data = os.pread(src_fd, count, offset)
    os.write(dst_fd, data)
    return len(data)


def file_digest(path: Path, *, max_bytes: int | None = None) -> tuple[str, int]:
    """The SHA-256 (lowercase hex) and length of `path`, read in chunks. With `max_bytes`, reading
    stops one byte past it (the length then says the file is too long). Raises OSError."""
    digest = hashlib.sha256()
    length = 0
    buf = bytearray(1024 * 1024)
    view = memoryview(buf)
    limit = None if max_bytes is None else max_bytes + 1
    with open(path, "rb", buffering=0) as fh:
        while limit is None or length < limit:
            want = len(buf) if limit is None else min(len(buf), limit - length)
            n = fh.readinto(view[:want])
            if not n:
                break
            digest.update(view[:n])
            length += n
    return digest.hexdigest(), length
