"""Fetching TUF metadata and artifacts over HTTP, resuming an interrupted artifact download.

Owns: the transport under `tuf.ngclient` (`ResumableFetcher` is a `FetcherInterface`, so metadata
downloads keep python-tuf's length limits) and `download_resumable`, which appends to a partial
file with `Range: bytes=<have>-` and never accepts more bytes than the signed metadata lists.
Subclasses write one hook, `_fetch_from(url, offset)`: `HttpFetcher` over httpx here, an in-memory
repository in the tests. A server that trickles (slow retrieval: each byte in time for the read
timeout, but the whole never arriving) is cut off once the download runs below `min_bytes_per_s`
on average after `grace_s`; what arrived stays for the resume. Errors are python-tuf's:
`DownloadLengthMismatchError` for bytes beyond the listed length (endless data),
`SlowRetrievalError` for a stalled or trickling server, `DownloadHTTPError`
for an HTTP error, `DownloadError` for the rest of the transport; foreign exceptions are wrapped.
Leaves verifying the bytes to `edge_agent.ota.verify`.
"""

from __future__ import annotations

import abc
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class ResumableFetcher(FetcherInterface):
    """A python-tuf fetcher that can also resume a download at a byte offset."""

    min_bytes_per_s: float = 1024.0  # average over one resumed download, checked after grace_s
    grace_s: float = 60.0
    clock: Callable[[], float] = staticmethod(time.monotonic)

    @abc.abstractmethod
    def _fetch_from(self, url: str, offset: int) -> tuple[int, Iterator[bytes]]:
        """Ask for `url` from byte `offset` on: (the offset the body starts at, the body's chunks).
        A server that ignores the range answers from 0. Raises DownloadHTTPError for an HTTP error,
        anything else for a failed transport."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        return self._fetch_from(url, 0)[1]

    def download_resumable(self, url: str, part: Path, length_bytes: int) -> None:
        """Make `part` hold the first `length_bytes` bytes of `url`, keeping what it holds already.
        On a transport failure the bytes received so far stay in `part` for the next try. Raises
        DownloadLengthMismatchError (the server sent more than `length_bytes`: `part` is removed),
        SlowRetrievalError (below `min_bytes_per_s`: `part` keeps what arrived), DownloadError and
        its children for the transport (an incomplete body included)."""
        have = part.stat().st_size if part.exists() else 0
        if have > length_bytes:
            part.unlink()
            have = 0
        if have == length_bytes:
            return
        try:
            start, chunks = self._fetch_from(url, have)
        except exceptions.DownloadError:
            raise
        except Exception as exc:  # noqa: BLE001  # wrapped at the boundary, as python-tuf does
            raise exceptions.DownloadError(f"failed to download {url}") from exc
        if start not in (0, have):
            raise exceptions.DownloadError(f"asked for bytes from {have}, the server sent from {start}")
        with part.open("r+b" if part.exists() else "wb") as out:
            out.truncate(start)
            out.seek(start)
            received = start
            began = self.clock()
            try:
                for chunk in chunks:
                    if received + len(chunk) > length_bytes:
                        raise exceptions.DownloadLengthMismatchError(
                            f"the server sent more than the {length_bytes} bytes the metadata lists"
                        )
                    out.write(chunk)
                    received += len(chunk)
                    elapsed_s = self.clock() - began
                    rate = (received - start) / elapsed_s if elapsed_s > 0 else float("inf")
                    if elapsed_s > self.grace_s and rate < self.min_bytes_per_s:
                        raise exceptions.SlowRetrievalError(
                            f"{rate:.0f} B/s after {elapsed_s:.0f} s, below {self.min_bytes_per_s:.0f} B/s"
                        )
            except exceptions.DownloadLengthMismatchError:
                out.close()
                part.unlink()
                raise
            except exceptions.DownloadError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise exceptions.DownloadError(f"download of {url} broke off at byte {received}") from exc
            finally:
                if not out.closed:
                    out.flush()
                    os.fsync(out.fileno())
        if received < length_bytes:
            raise exceptions.DownloadError(f"{url} ended at byte {received} of {length_bytes}; resume later")


class HttpFetcher(ResumableFetcher):
    """HTTP(S) through httpx, with a connect and read timeout (`timeout_s`, between bytes)."""

    def __init__(self, timeout_s: float = 30.0, chunk_bytes: int = 64 << 10) -> None:
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._chunk_bytes = chunk_bytes

    def close(self) -> None:
        self._client.close()

    def _fetch_from(self, url: str, offset: int) -> tuple[int, Iterator[bytes]]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            response = self._client.send(self._client.build_request("GET", url, headers=headers), stream=True)
        except httpx.TimeoutException as exc:
            raise exceptions.SlowRetrievalError from exc
        except httpx.HTTPError as exc:
            raise exceptions.DownloadError(f"failed to download {url}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            response.close()
            raise exceptions.DownloadHTTPError(f"HTTP {response.status_code} for {url}", response.status_code)
        start = 0
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if match is None:
                response.close()
                raise exceptions.DownloadError(f"206 without a usable Content-Range from {url}")
            start = int(match.group(1))
        return start, self._chunks(response)

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(self._chunk_bytes)
        except httpx.TimeoutException as exc:
            raise exceptions.SlowRetrievalError from exc
        except httpx.HTTPError as exc:
            raise exceptions.DownloadError(f"download broke off: {type(exc).__name__}") from exc
        finally:
            response.close()
