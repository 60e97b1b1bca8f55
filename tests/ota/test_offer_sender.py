"""Offers wait, never fail, when they cannot be made yet: a target not published, no repository
configured, campaign terms that are not a valid offer; the vehicles stay pending and are offered
once the cause is gone. Real PostgreSQL and a real TUF repository; no broker (nothing is sent)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ota.loop import LoopConfig, campaign_step
from tests.conftest import migrated_fresh_database
from tests.ota.loop_helpers import insert_campaign, publish_target, rows, seed_vehicles

pytestmark = pytest.mark.postgres
URL = "https://ota.example.com/"


def test_offers_wait_until_they_can_be_made(pg_server_url: str, tmp_path: Path) -> None:
    url = migrated_fresh_database(pg_server_url, "ota_offer_wait")
    repo = publish_target(tmp_path)  # ECM 4.2.1 only
    with psycopg.connect(url, autocommit=True) as conn:
        seed_vehicles(conn, {"W-1": "ecm-b12", "W-2": "ecm-b12"})
        insert_campaign(conn, [100.0], to_version="4.2.2")
        step = campaign_step(conn, LoopConfig(repo, URL, None))
        assert step["offers"] == 0 and step["deferred"] == {
            "ECM 4.2.2 is not published in the TUF repository": 2
        }
        step = campaign_step(conn, LoopConfig(None, None, None))
        assert step["deferred"] == {
            "no OTA repository configured (FLEET_OTA_REPO_DIR and FLEET_OTA_REPOSITORY_URL)": 2
        }
        assert step["problems"] and step["paused"] == [] and step["finished"] == []
        assert rows(url, "SELECT DISTINCT state FROM campaign_vehicles") == [("pending",)]
        assert rows(url, "SELECT count(*) FROM update_offers") == [(0,)]
        conn.execute(
            "UPDATE campaigns SET to_version = '4.2.1', urgency = 'forced_after', forced_after = NULL"
        )
        step = campaign_step(conn, LoopConfig(repo, URL, None))
        ((why, n),) = step["deferred"].items()
        assert n == 2 and why.startswith("the campaign's offer is not valid: forced_after_us is required")
        assert rows(url, "SELECT count(*) FROM update_offers") == [(0,)]
        assert rows(url, "SELECT count(*) FROM ota_audit") == [(0,)]  # a deferred offer leaves no trace
        conn.execute("UPDATE campaigns SET forced_after = now() + interval '7 days'")
        step = campaign_step(conn, LoopConfig(repo, URL, None))
        assert step["offers"] == 2 and step["deferred"] == {}
        offers = rows(
            url, "SELECT offer->>'urgency', (offer->>'forced_after_us')::bigint > 0 FROM update_offers"
        )
        assert offers == [("forced_after", True)] * 2
