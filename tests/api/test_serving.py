"""Admission control and Server-Timing (`api.serving`): at most `max_active` requests run, up to
`max_waiting` wait in arrival order, the rest get 503 with Retry-After at once; a waiter that gives
up frees nothing it did not hold; every admitted response says where its time went."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api import create_app
from api.serving import OVERLOADED_TYPE, Admission


def _held_app(max_active: int, max_waiting: int) -> tuple[Admission, asyncio.Event, list[str]]:
    release = asyncio.Event()
    order: list[str] = []

    async def hold(request: Request) -> PlainTextResponse:
        order.append(request.query_params["n"])
        await release.wait()
        return PlainTextResponse("done")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/hold", hold), Route("/health", health)])
    return Admission(inner, max_active=max_active, max_waiting=max_waiting, retry_after_s=3), release, order


async def _until(condition, timeout_s: float = 5.0) -> None:  # noqa: ANN001
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


def test_requests_beyond_the_running_and_waiting_ones_are_shed_at_once() -> None:
    async def scenario() -> None:
        admission, release, order = _held_app(max_active=2, max_waiting=1)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admission), base_url="http://t") as c:
            running = [asyncio.create_task(c.get("/hold", params={"n": str(n)})) for n in (1, 2)]
            await _until(lambda: len(order) == 2)
            waiting = asyncio.create_task(c.get("/hold", params={"n": "3"}))
            await _until(lambda: len(admission._waiters) == 1)
            shed = await c.get("/hold", params={"n": "4"})  # answered while the others still run
            assert shed.status_code == 503 and shed.headers["retry-after"] == "3"
            assert shed.headers["content-type"] == "application/problem+json"
            assert shed.json()["type"] == OVERLOADED_TYPE and shed.json()["status"] == 503
            assert (await c.get("/health")).status_code == 200  # never metered
            assert order == ["1", "2"]  # the third has not started: it waits for a slot
            release.set()
            done = [await t for t in (*running, waiting)]
            assert [r.status_code for r in done] == [200, 200, 200] and order == ["1", "2", "3"]
            timing = dict(p.strip().split(";dur=") for p in done[2].headers["server-timing"].split(","))
            assert set(timing) == {"queue", "db", "app"} and float(timing["queue"]) > 0
            assert admission.active == 0 and admission.shed == 1

    asyncio.run(scenario())


def test_a_waiter_that_gives_up_frees_no_slot_it_did_not_hold() -> None:
    async def scenario() -> None:
        admission, release, order = _held_app(max_active=1, max_waiting=2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admission), base_url="http://t") as c:
            first = asyncio.create_task(c.get("/hold", params={"n": "1"}))
            await _until(lambda: len(order) == 1)
            impatient = asyncio.create_task(c.get("/hold", params={"n": "2"}))
            await _until(lambda: len(admission._waiters) == 1)
            impatient.cancel()
            with pytest.raises(asyncio.CancelledError):
                await impatient
            assert admission.active == 1 and not admission._waiters
            later = asyncio.create_task(c.get("/hold", params={"n": "3"}))
            await _until(lambda: len(admission._waiters) == 1)
            release.set()
            assert [(await t).status_code for t in (first, later)] == [200, 200]
            assert order == ["1", "3"] and admission.active == 0

    asyncio.run(scenario())


def test_admission_needs_a_slot_and_a_non_negative_queue() -> None:
    with pytest.raises(ValueError):
        Admission(Starlette(), max_active=0, max_waiting=1)
    with pytest.raises(ValueError):
        Admission(Starlette(), max_active=1, max_waiting=-1)


@pytest.mark.postgres
def test_the_api_reports_its_database_time(seeded_url: str, tokens: dict[str, str]) -> None:
    with TestClient(create_app(seeded_url)) as client:
        response = client.get("/v1/vehicles", headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert response.status_code == 200
    timing = dict(p.strip().split(";dur=") for p in response.headers["server-timing"].split(","))
    assert float(timing["db"]) > 0  # the token check and the listing ran statements
