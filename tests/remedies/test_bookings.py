"""People's acts on a booked visit, against a real PostgreSQL: reschedule, cancel (with and
without a new booking), no-shows up to the limit, completion; each recorded with its actor."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from analytics.findings import Severity
from remedies import bookings
from tests.remedies.test_run import raise_alarm, rows, run, url  # noqa: F401  (url: the fixture)

pytestmark = pytest.mark.postgres


def booked(url: str) -> tuple[int, dt.datetime]:  # noqa: F811
    ((booking_id, starts),) = rows(url, "SELECT booking_id, starts_at FROM bookings WHERE status = 'booked'")
    return booking_id, starts


def test_reschedule_cancel_no_show_and_complete(url: str) -> None:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    raise_alarm(url, "V0", "tyre_slow_leak", Severity.MAJOR, now - dt.timedelta(minutes=5))
    run(url, now)
    first, first_at = booked(url)
    with psycopg.connect(url) as conn:
        second = bookings.reschedule(conn, first, "centre:far")
    assert second is not None and second != first
    second_at = booked(url)[1]
    assert second_at > first_at
    history = rows(url, "SELECT status, actor FROM booking_history WHERE booking_id = %s ORDER BY at", first)
    assert history[-1] == ("cancelled", "centre:far")
    with psycopg.connect(url) as conn:
        assert bookings.cancel(conn, second, "owner", "on holiday") is None
        with pytest.raises(LookupError):
            bookings.cancel(conn, second, "owner", "again")
    assert rows(url, "SELECT status FROM remedies") == [("proposed",)]
    # An operator books again; the vehicle misses it twice: the remedy fails after the second.
    with psycopg.connect(url) as conn:
        remedy_id, details = conn.execute("SELECT remedy_id, details FROM remedies").fetchone()  # type: ignore[misc]
        from remedies.run import RemedyReport, book_visit

        third = book_visit(conn, remedy_id, "V0", details, now, RemedyReport())
        assert third is not None
        fourth = bookings.no_show(conn, third, "centre:far")
        assert fourth is not None
        assert bookings.no_show(conn, fourth, "centre:far") is None
    assert rows(url, "SELECT status FROM remedies") == [("failed",)]
    assert rows(url, "SELECT count(*) FROM bookings WHERE status = 'no_show'") == [(2,)]


def test_a_completed_visit_makes_the_remedy_done(url: str) -> None:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    raise_alarm(url, "V1", "thermostat_stuck", Severity.MAJOR, now)
    run(url, now)
    booking_id, _ = booked(url)
    with psycopg.connect(url) as conn:
        bookings.complete(conn, booking_id, "centre:far")
    assert rows(url, "SELECT status FROM remedies") == [("done",)]
    assert rows(url, "SELECT status FROM bookings") == [("completed",)]
