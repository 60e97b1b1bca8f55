"""Give freed flush buffers back to the operating system, so that ingest's memory bound holds.

glibc serves allocations above its mmap threshold (128 KiB at start) with mmap and unmaps them on
free. But after the first such buffer is freed it raises the threshold to that buffer's size (up to
32 MiB), so later flush-sized numpy arrays come from per-thread heap arenas, which keep freed
memory. Measured with `fleet bench inflation`: a peak RSS of 550 MB instead of 310 MB for the same
frames. Pinning the threshold switches that adjustment off. Other C libraries: nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def pin_mmap_threshold(threshold_bytes: int = 128 << 10) -> bool:
    """Call glibc's mallopt(M_MMAP_THRESHOLD, threshold_bytes); False where that is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    log.debug("mallopt(M_MMAP_THRESHOLD, %d): %s", threshold_bytes, ok)
    return ok
