"""The fleet map page the API serves (docs/map.md): its HTML with the page's settings, its own
script and style, and the front-end library it is drawn with (Leaflet, from the npm registry,
committed in `api/web/vendor/` by `scripts/refresh-web-vendor`).

Owns: `MapConfig` (an optional tile server for production; off by default, so the page draws the
stored road network and needs nothing from outside), the page's HTML and security headers, and
the list of files it may serve (`asset`): nothing outside that list is ever read. The page holds
no data: it asks the data routes with the bearer token a person signs in with. Leaves the routes
to `api.routes.map_page`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

_TILE_URL = re.compile(r"https://[^\s\"'<>]+|http://(127\.0\.0\.1|localhost)(:[0-9]+)?/[^\s\"'<>]*")
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", "": "text/plain"}
ASSETS = frozenset(
    {
        "map.js",
        "map.css",
        "vendor/leaflet/leaflet.js",
        "vendor/leaflet/leaflet.css",
        "vendor/leaflet/LICENSE",
        *(
            f"vendor/leaflet/images/{n}.png"
            for n in ("layers", "layers-2x", "marker-icon", "marker-icon-2x", "marker-shadow")
        ),
    }
)


@dataclass(frozen=True, slots=True)
class MapConfig:
    """The page's settings. `tile_url` is an XYZ template (`https://.../{z}/{x}/{y}.png`) drawn
    under the data; None (the default) draws only the road network the database holds."""

    tile_url: str | None = None
    tile_attribution: str = ""

    def __post_init__(self) -> None:
        if self.tile_url is not None and not (
            _TILE_URL.fullmatch(self.tile_url) and all(p in self.tile_url for p in ("{z}", "{x}", "{y}"))
        ):
            raise ValueError(
                "a tile URL is https:// (http:// only to localhost) with {z}, {x} and {y}, e.g. "
                "https://tiles.example.com/{z}/{x}/{y}.png"
            )

    @property
    def tile_origin(self) -> str | None:
        if self.tile_url is None:
            return None
        parts = urlsplit(self.tile_url.replace("{s}", "a"))
        return f"{parts.scheme}://{parts.netloc}"


def security_headers(config: MapConfig) -> dict[str, str]:
    """What the browser may load for the page: its own files, the API, and the tile server if one
    is configured; nothing inline, no frames, no referrer (the page's URL carries no secret anyway)."""
    tiles = f" {config.tile_origin}" if config.tile_origin else ""
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
            f" img-src 'self' data:{tiles}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _embed(data: dict[str, Any]) -> str:
    """JSON that is safe inside a <script> element (no `</script>`, no HTML)."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(config: MapConfig, *, assets_path: str, urls: dict[str, str], max_span_deg: float) -> str:
    """The page's HTML: the template with the asset path and the page's settings filled in."""
    settings = {
        "urls": urls,
        "tileUrl": config.tile_url,
        "tileAttribution": config.tile_attribution,
        "maxSpanDeg": max_span_deg,
    }
    template = (resources.files("api") / "web" / "index.html").read_text(encoding="utf-8")
    return template.replace("{{ASSETS}}", assets_path).replace("{{SETTINGS}}", _embed(settings))


def asset(path: str) -> tuple[bytes, str] | None:
    """A listed file's bytes and media type; None for anything not in ASSETS."""
    if path not in ASSETS:
        return None
    suffix = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
    return (resources.files("api") / "web" / path).read_bytes(), MEDIA_TYPES[suffix]
