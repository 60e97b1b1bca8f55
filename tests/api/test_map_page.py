"""The map page as served (no browser: tests/api/test_map_browser.py drives one): the page and its
files without a token, its settings, its security headers, and the bundled Leaflet release checked
against the hashes its refresh script recorded."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import MapConfig, create_app
from api.map_page import ASSETS
from api.map_params import MAX_SPAN_DEG

UNUSED_DB = "postgresql://unused@127.0.0.1:1/unused"
WEB = Path(str(resources.files("api") / "web"))


def page_settings(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="fleetmap-settings">(.*?)</script>', html)
    assert match is not None
    return json.loads(match.group(1))


def test_the_page_is_served_without_a_token_and_names_the_data_routes() -> None:
    app = create_app(UNUSED_DB)
    r = TestClient(app).get("/map")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    settings = page_settings(r.text)
    assert settings == {
        "urls": {
            "hazards": app.url_path_for("list_hazards"),
            "roads": app.url_path_for("list_roads"),
            "roadExtent": app.url_path_for("road_extent"),
            "vehicles": app.url_path_for("vehicle_positions"),
            "alarmCounts": app.url_path_for("alarm_counts"),
        },
        "tileUrl": None,
        "tileAttribution": "",
        "maxSpanDeg": MAX_SPAN_DEG,
    }
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp  # no tile server configured: nothing from outside
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_the_page_and_its_files_load_nothing_from_elsewhere() -> None:
    for name in ("index.html", "map.js", "map.css"):
        text = (WEB / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
    html = TestClient(create_app(UNUSED_DB)).get("/map").text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        if ref == "data:,":  # the empty icon: the browser does not ask for /favicon.ico
            continue
        assert ref.startswith("/map/assets/") and ref.removeprefix("/map/assets/") in ASSETS, ref


def test_a_configured_tile_server_is_named_in_the_settings_and_allowed_for_images() -> None:
    config = MapConfig("https://tiles.example.com/{z}/{x}/{y}.png", "© Example")
    r = TestClient(create_app(UNUSED_DB, map_config=config)).get("/map")
    assert page_settings(r.text)["tileUrl"] == config.tile_url
    assert "img-src 'self' data: https://tiles.example.com;" in r.headers["content-security-policy"]


@pytest.mark.parametrize(
    "url",
    [
        "http://tiles.example.com/{z}/{x}/{y}.png",  # plain http off the machine
        "https://tiles.example.com/{z}/{x}.png",  # no {y}
        "javascript:alert(1)//{z}{x}{y}",
        'https://x.example/{z}/{x}/{y}.png"><script>',
    ],
)
def test_a_bad_tile_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="tile URL"):
        MapConfig(url)


def test_settings_are_embedded_safely() -> None:
    config = MapConfig(None, "</script><script>alert(1)</script>")
    html = TestClient(create_app(UNUSED_DB, map_config=config)).get("/map").text
    assert "<script>alert" not in html
    assert page_settings(html)["tileAttribution"] == config.tile_attribution


def test_only_the_listed_files_are_served() -> None:
    client = TestClient(create_app(UNUSED_DB))
    for name in sorted(ASSETS):
        r = client.get(f"/map/assets/{name}")
        assert r.status_code == 200 and r.content == (WEB / name).read_bytes(), name
    assert client.get("/map/assets/map.js").headers["content-type"].startswith("text/javascript")
    for name in ("index.html", "vendor/leaflet/VENDOR.json", "../app.py", "%2e%2e/app.py", "vendor/leaflet/"):
        assert client.get(f"/map/assets/{name}").status_code == 404, name


def test_the_page_is_not_in_the_openapi_document() -> None:
    paths = create_app(UNUSED_DB).openapi()["paths"]
    assert not any(p.startswith("/map") for p in paths)


def test_the_bundled_leaflet_is_the_recorded_npm_release() -> None:
    """scripts/refresh-web-vendor checked the npm tarball's sha512 and recorded each file's sha256."""
    vendor = WEB / "vendor" / "leaflet"
    manifest = json.loads((vendor / "VENDOR.json").read_text())
    assert manifest["package"] == "leaflet" and manifest["integrity"].startswith("sha512-")
    assert "LICENSE" in manifest["sha256"] and "BSD" in (vendor / "LICENSE").read_text()
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    listed = {p.removeprefix("vendor/leaflet/") for p in ASSETS if p.startswith("vendor/leaflet/")}
    assert listed == set(manifest["sha256"])
