"""Serving the TUF repository over HTTP: metadata and artifacts, with Range requests.

Owns: the ASGI app (`create_app`) that `fleet ota serve` runs under uvicorn. Two read-only routes,
`GET|HEAD /metadata/<file>` and `GET|HEAD /targets/<path>`, map onto the repository's
`metadata/` and `targets/` directories. A Range request (`Range: bytes=N-`) gets `206 Partial
Content` with `Content-Range`, so an interrupted download resumes (Starlette's FileResponse does
the byte ranges; `If-Range` is honoured). Nothing outside those two directories is reachable: no
`..`, no hidden file (the lock and temporary files start with a dot), no directory listing, no
symlink out of the tree. Caching: `timestamp.json` and `root.json` change in place, so `no-cache`;
every other file is content-addressed (versioned metadata, hash-prefixed artifacts), so
`immutable`.

The server needs no key and changes nothing: what it serves was signed offline by
`ota.repository`, and clients trust the signatures, not the transport. Put TLS in front of it in
production (a reverse proxy), as for the API.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

_SEGMENT = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,199}")
_MUTABLE = {"timestamp.json", "root.json"}


def resolve(base: Path, relative: str) -> Path | None:
    """The regular file `relative` names under `base`, or None when the path is not one we serve
    (a hidden or odd segment, `..`, too deep, a directory, a symlink leaving `base`, missing)."""
    parts = relative.split("/")
    if not 1 <= len(parts) <= 4 or not all(_SEGMENT.fullmatch(p) for p in parts):
        return None
    path = base.joinpath(*parts)
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(base.resolve()) or not real.is_file():
        return None
    return real


def create_app(repo_dir: Path) -> Starlette:
    """The app serving `repo_dir` (made by `ota.repository.OtaRepository`)."""
    metadata_dir = repo_dir / "metadata"
    targets_dir = repo_dir / "targets"

    def serve(base: Path, relative: str) -> Response:
        path = resolve(base, relative)
        if path is None:
            return PlainTextResponse("not found\n", status_code=404)
        mutable = base == metadata_dir and relative in _MUTABLE
        cache = "no-cache" if mutable else "public, max-age=31536000, immutable"
        media = "application/json" if base == metadata_dir else "application/octet-stream"
        return FileResponse(path, media_type=media, headers={"Cache-Control": cache})

    async def metadata(request: Request) -> Response:
        return serve(metadata_dir, request.path_params["name"])

    async def targets(request: Request) -> Response:
        return serve(targets_dir, request.path_params["path"])

    async def health(request: Request) -> Response:
        ok = (metadata_dir / "timestamp.json").is_file()
        return PlainTextResponse("ok\n" if ok else "no repository\n", status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/metadata/{name}", metadata, methods=["GET", "HEAD"]),
            Route("/targets/{path:path}", targets, methods=["GET", "HEAD"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


@contextlib.contextmanager
def serving_in_thread(repo_dir: Path, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve `repo_dir` on a free loopback port from a thread of this process (tests, benchmarks)
    and yield its base URL (`http://127.0.0.1:<port>/`). Raises RuntimeError when it does not start."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(repo_dir), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError("the repository server did not start")
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
