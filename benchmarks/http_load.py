"""A lean HTTP/1.1 load generator for `fleet bench api`: one keep-alive connection per simulated
client on asyncio streams, GET only, responses framed by Content-Length.

Why not httpx: on this 2-core machine the load generator shares the CPU with the server it
measures, and httpx's async connection pool cost about 5-10 ms of CPU per request at 50 concurrent
clients (measured with `fleet bench api`'s CPU meter), more than the API itself. This client does
the least a client can: write the request, read the status line and headers, read the body.
Raises ProtocolError for a response it cannot frame (no Content-Length, chunked, a closed stream).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode


class ProtocolError(Exception):
    """A response this client cannot read (see the module docstring)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; the last of repeated headers
    body: bytes


class Connection:
    """One keep-alive connection; `get` sends a request and reads its response."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, query: dict[str, str] | None = None) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        target = f"{path}?{urlencode(query)}" if query else path
        self._writer.write(f"GET {target} HTTP/1.1\r\nHost: {self._host}\r\n{self._auth}\r\n".encode())
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            await self.close()
            raise ProtocolError(f"no complete response head: {exc}") from None
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            await self.close()
            raise ProtocolError(f"bad status line {lines[0]!r}") from None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            await self.close()
            raise ProtocolError("a response without Content-Length")
        body = await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
