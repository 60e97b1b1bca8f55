"""The fleet map page in a real headless Chromium (Debian's `chromium`, driven over the DevTools
protocol: tests/api/devtools.py) against the API served by uvicorn on the map seed.

It signs in with a bearer token, checks that the confirmed hazards in view are drawn (each a
DOM element with the site's id and kind), that an admin sees every placed vehicle and a service
centre only its own, that the fleet, alarm and hazard-kind filters work, that the token stays in
sessionStorage and out of every URL, and that nothing breaks the page's Content-Security-Policy.
It saves a screenshot under the test's tmp dir.

Skipped, with the reason, only when chromium is not installed and FLEET_TEST_REQUIRE_CHROMIUM is
unset; .ci/run installs chromium and sets it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api import create_app
from tests.api.devtools import Page, chromium_page, find_chromium
from tests.api.live_server import serving
from tests.api.map_seed import ALARMS, FLEET_OF, POSITION, SITES

pytestmark = pytest.mark.postgres

CHROMIUM = find_chromium()
if CHROMIUM is None and not os.environ.get("FLEET_TEST_REQUIRE_CHROMIUM"):
    pytest.skip(
        "chromium is not installed (apt-get install chromium; .ci/run installs it and sets "
        "FLEET_TEST_REQUIRE_CHROMIUM=1, which turns this skip into a failure)",
        allow_module_level=True,
    )

CONFIRMED_IN_TOWN = {i for i, s in enumerate(SITES) if s.state == "confirmed" and s.lat < 48.2}


@pytest.fixture(scope="module")
def live_api(database_url: str, map_seeded: dict[str, int]) -> Iterator[str]:
    with serving(create_app(database_url)) as base_url:
        yield base_url


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    assert CHROMIUM is not None, "chromium is required (FLEET_TEST_REQUIRE_CHROMIUM is set) but not installed"
    with chromium_page(CHROMIUM, tmp_path / "profile") as p:
        yield p


READY = "document.getElementById('status').dataset.state === 'ready'"


def sign_in(page: Page, token: str) -> None:
    page.evaluate("document.getElementById('token').focus()")
    page.call("Input.insertText", text=token)
    page.evaluate("document.querySelector('#login button[type=submit]').click()")


def choose(page: Page, select_id: str, value: str) -> None:
    page.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(select_id)});"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )
    page.wait_for(READY)


def hazards_drawn(page: Page) -> dict[int, str]:
    pairs = page.evaluate(
        "[...document.querySelectorAll('#map [data-hazard-id]')]"
        ".map(e => [e.dataset.hazardId, e.dataset.hazardKind])"
    )
    return {int(i): kind for i, kind in pairs}


def vehicles_drawn(page: Page) -> set[str]:
    return set(
        page.evaluate(
            "[...document.querySelectorAll('#map [data-vehicle-id]')].map(e => e.dataset.vehicleId)"
        )
    )


def centre_rows(page: Page) -> dict[str, int]:
    rows = page.evaluate(
        "[...document.querySelectorAll('#alarm-counts tbody tr')]"
        ".map(r => [r.dataset.centreId, r.dataset.total])"
    )
    return {c: int(t) for c, t in rows}


def test_the_map_signs_in_shows_hazards_and_vehicles_and_filters(
    page: Page, live_api: str, map_tokens: dict[str, str], map_seeded: dict[str, int], tmp_path: Path
) -> None:
    page.navigate(f"{live_api}/map")
    assert page.evaluate("document.getElementById('panel').hidden") is True  # nothing before signing in

    token = map_tokens["admin"]
    sign_in(page, token)
    page.wait_for(READY)
    site_of = {map_seeded[str(i)]: SITES[i].kind for i in CONFIRMED_IN_TOWN}
    assert hazards_drawn(page) == site_of, (
        page.problems(),
        page.evaluate("document.getElementById('status').textContent"),
    )
    assert vehicles_drawn(page) == set(POSITION)  # every vehicle with a position (VIN-N3 has none)
    assert centre_rows(page) == {"sc-north": 1, "sc-south": 1}
    labels = page.evaluate(
        "[...document.querySelectorAll('#map [data-centre-marker]')].map(e => e.textContent)"
    )
    assert sorted(labels) == ["North: 1", "South: 1"]
    assert (
        page.evaluate("document.querySelectorAll('#map .leaflet-overlay-pane canvas').length") >= 1
    )  # roads
    screenshot = page.screenshot(tmp_path / "map.png")

    choose(page, "filter-hazard", "pothole")
    assert set(hazards_drawn(page).values()) == {"pothole"}
    choose(page, "filter-hazard", "")
    choose(page, "filter-fleet", "fleet-a")
    assert vehicles_drawn(page) == {v for v, f in FLEET_OF.items() if f == "fleet-a"}
    choose(page, "filter-fleet", "")
    choose(page, "filter-alarm", "*")
    assert vehicles_drawn(page) == {v for v, _, _, cleared in ALARMS if not cleared}
    choose(page, "filter-alarm", "brake_pad_wear")
    assert vehicles_drawn(page) == {"VIN-N1"}
    choose(page, "filter-alarm", "")
    choose(page, "filter-centre", "sc-south")
    assert vehicles_drawn(page) == {"VIN-S1"}

    # The token: in sessionStorage, in the Authorization header, never in a URL or anywhere else.
    assert page.evaluate("sessionStorage.getItem('fleetpulse.token')") == token
    assert page.evaluate("localStorage.length + document.cookie.length") == 0
    requests = [e["params"]["request"] for e in page.events if e["method"] == "Network.requestWillBeSent"]
    assert requests and not any(token in r["url"] for r in requests)
    api_calls = [r for r in requests if "/map" not in r["url"]]
    assert api_calls and all(r["headers"].get("Authorization") == f"Bearer {token}" for r in api_calls)
    assert all(r["url"].startswith(live_api) for r in requests)  # nothing from elsewhere
    assert page.problems() == []

    page.evaluate("document.getElementById('logout').click()")
    assert page.evaluate("sessionStorage.getItem('fleetpulse.token')") is None
    assert vehicles_drawn(page) == set() and hazards_drawn(page) == {}
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000


def test_a_centre_sees_only_its_own_vehicles_and_counts(
    page: Page, live_api: str, map_tokens: dict[str, str], map_seeded: dict[str, int]
) -> None:
    page.navigate(f"{live_api}/map")
    sign_in(page, map_tokens["north"])
    page.wait_for(READY)
    assert vehicles_drawn(page) == {"VIN-N1", "VIN-N2"}
    assert centre_rows(page) == {"sc-north": 1}
    labels = page.evaluate(
        "[...document.querySelectorAll('#map [data-centre-marker]')].map(e => e.textContent)"
    )
    assert labels == ["North: 1"]
    assert set(hazards_drawn(page)) == {
        map_seeded[str(i)] for i in CONFIRMED_IN_TOWN
    }  # the map is everyone's
    options = page.evaluate("[...document.getElementById('filter-fleet').options].map(o => o.value)")
    assert options == ["", "fleet-a", "fleet-b"]
    assert page.problems() == []


def test_a_wrong_token_is_refused_and_forgotten(
    page: Page, live_api: str, map_seeded: dict[str, int]
) -> None:
    page.navigate(f"{live_api}/map")
    sign_in(page, "not-a-token")
    page.wait_for("document.getElementById('login-error').textContent !== ''")
    assert page.evaluate("document.getElementById('panel').hidden") is True
    assert page.evaluate("sessionStorage.getItem('fleetpulse.token')") is None
    assert vehicles_drawn(page) == set()
