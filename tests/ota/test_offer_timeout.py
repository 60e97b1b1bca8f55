"""Silent vehicles through a real broker and a real PostgreSQL: an offer that no report answers
within the campaign's `offer_timeout_s` times out (`timed_out`, counted apart, in the audit register
and the campaign's history), so the wave finishes on the vehicles that answered; the vehicle is
offered the update again when it comes back online, and its late report is the truth. An offer the
broker never took does not time out; a wave in which nobody answered pauses for a person."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from contract.update import Software
from ota.audit import register
from ota.controller import act
from ota.loop import LoopConfig, campaign_step, report_step
from ota.rollout import Event
from tests.conftest import (
    TEST_VEHICLES,
    BrokerUnderTest,
    RunningIngest,
    fresh_ingest_id,
    migrated_fresh_database,
)
from tests.ota.loop_helpers import (
    BEFORE_SHA,
    Car,
    insert_campaign,
    publish_target,
    rows,
    seed_vehicles,
    target_of,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker]
URL = "https://ota.example.com/"
HOUR = dt.timedelta(hours=1)


def states(url: str) -> dict[str, str]:
    return dict(rows(url, "SELECT vehicle_id, state FROM campaign_vehicles"))


def test_a_silent_vehicle_times_out_the_wave_goes_on_and_its_late_report_counts(
    broker: BrokerUnderTest, pg_server_url: str, tmp_path: Path
) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_timeout")
    repo = publish_target(tmp_path)
    target = target_of(repo)
    new, old = Software("4.2.1", target.sha256), Software("4.2.0", BEFORE_SHA)
    answers, silent = TEST_VEHICLES[0], TEST_VEHICLES[1]
    config = LoopConfig(repo, URL, broker.ingest)
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {answers: "ecm-b12", silent: "ecm-b12"})
        insert_campaign(conn, [100.0], offer_timeout_s=3600.0)  # success threshold 1.0, soak 60 s
    car = Car(broker, answers)
    try:
        with (
            RunningIngest(broker.ingest, url, fresh_ingest_id()),
            psycopg.connect(url, autocommit=True) as conn,
        ):
            car.register(conn)
            t0 = dt.datetime.now(dt.UTC)
            step = campaign_step(conn, config, now=t0)  # the silent vehicle is offline: nobody gets its offer
            assert step["offers"] == 2 and step["publish"]["published"] == 2
            (offer,) = car.wait_for_offers(1)
            for state in ("downloading", "installed", "committed"):
                car.report(
                    offer, state, after=old if state == "downloading" else new, target_sha256=target.sha256
                )
            assert wait_until(lambda: int(rows(url, "SELECT count(*) FROM update_reports")[0][0]) == 3)
            assert report_step(conn, config)["recorded"] == 3

            # After the soak the wave still waits for the silent vehicle, until its offer times out.
            step = campaign_step(conn, config, now=t0 + dt.timedelta(seconds=120))
            assert step["finished"] == [] and step["timed_out"] == []
            assert states(url) == {answers: "committed", silent: "offered"}
            step = campaign_step(conn, config, now=t0 + HOUR)
            assert step["timed_out"] == [(1, silent)]
            assert step["finished"] == [1]  # 1 of the 1 that answered; the silent one is not a success
            assert states(url) == {answers: "committed", silent: "timed_out"}
            assert rows(url, "SELECT reason FROM campaign_vehicles WHERE vehicle_id = %s", silent) == [
                ("no report within 3600 s of the offer",)
            ]
            history = [r for (r,) in rows(url, "SELECT reason FROM campaign_history ORDER BY at")]
            assert "offers timed out: 1 (no report within 3600 s of the offer)" in history
            assert "1 of 1 succeeded after the soak; 1 timed out without a report" in history[-1]
            entry = next(e for e in register(conn) if e["vehicle_id"] == silent)
            assert (entry["result"], entry["result_reason"]) == (
                "timed_out",
                "no report within 3600 s of the offer",
            )
            assert campaign_step(conn, config, now=t0 + 2 * HOUR)["timed_out"] == []  # once

            # The vehicle comes back: the same offer goes out again, and its late report is the truth.
            late = Car(broker, silent)
            try:
                late.register(conn)
                late.publish_status(b"online")
                online = "SELECT state FROM vehicle_status WHERE vehicle_id = %s"
                assert wait_until(lambda: rows(url, online, silent) == [("online",)])
                step = campaign_step(conn, config, now=t0 + 3 * HOUR)
                assert step["publish"]["republished"] == 1
                (again,) = late.wait_for_offers(1)
                assert again.offer_id == entry["offer_id"]
                late.report(again, "committed", after=new, target_sha256=target.sha256)
                assert wait_until(lambda: int(rows(url, "SELECT count(*) FROM update_reports")[0][0]) == 4)
                assert report_step(conn, config)["recorded"] == 1
            finally:
                late.close()
            assert states(url) == {answers: "committed", silent: "committed"}
            assert rows(
                url, "SELECT software_version FROM vehicle_software WHERE vehicle_id = %s", silent
            ) == [("4.2.1",)]
            entry = next(e for e in register(conn) if e["vehicle_id"] == silent)
            assert entry["result"] == "committed"
    finally:
        car.close()


def test_no_answer_from_a_whole_wave_pauses_and_an_offer_never_sent_does_not_time_out(
    broker: BrokerUnderTest, pg_server_url: str, tmp_path: Path
) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_timeout_none")
    repo = publish_target(tmp_path)
    vids = list(TEST_VEHICLES[:2])
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {v: "ecm-b12" for v in vids})
        insert_campaign(conn, [100.0], offer_timeout_s=60.0)
        t0 = dt.datetime.now(dt.UTC)
        unsent = campaign_step(conn, LoopConfig(repo, URL, None), now=t0)  # no broker: recorded, not sent
        assert unsent["offers"] == 2 and unsent["publish"]["unpublished"] == 2
        step = campaign_step(conn, LoopConfig(repo, URL, None), now=t0 + 10 * HOUR)
        assert step["timed_out"] == [] and set(states(url).values()) == {"offered"}
        config = LoopConfig(repo, URL, broker.ingest)
        assert campaign_step(conn, config, now=t0 + 10 * HOUR)["publish"]["published"] == 2  # sent now
        step = campaign_step(conn, config, now=t0 + 10 * HOUR + dt.timedelta(seconds=61))
        assert len(step["timed_out"]) == 2
        ((cid, why),) = step["paused"]
        assert cid == 1 and "no vehicle answered" in why
        act(conn, 1, Event.RESUME, "ops", "both cars were scrapped")  # a person accepts the timeouts
        step = campaign_step(conn, config, now=t0 + 11 * HOUR)
        assert step["finished"] == [1]
        assert set(states(url).values()) == {"timed_out"}
