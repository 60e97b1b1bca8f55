"""The fleet map page (docs/map.md): `GET /map` and its files under `/map/assets/`.

Owns: serving the page without a token (it holds no data; signing in happens in the page, and the
token is sent only as a bearer header to the data routes) and telling the page where those routes
are, by name, so it follows wherever they are mounted (e.g. under `/v1`). Not in the OpenAPI
document: these are a browser's, not an API client's. Leaves the page to `api.map_page`.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from api.map_page import MapConfig, asset, render_page, security_headers
from api.map_params import MAX_SPAN_DEG

router = APIRouter(include_in_schema=False)

DATA_ROUTES = {  # the page's name -> the route's name
    "hazards": "list_hazards",
    "roads": "list_roads",
    "roadExtent": "road_extent",
    "vehicles": "vehicle_positions",
    "alarmCounts": "alarm_counts",
}


def _config(request: Request) -> MapConfig:
    config = getattr(request.app.state, "map_config", None)
    return config if isinstance(config, MapConfig) else MapConfig()


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    urls = {name: root + request.app.url_path_for(route) for name, route in DATA_ROUTES.items()}
    config = _config(request)
    html = render_page(config, assets_path=f"{root}/map/assets", urls=urls, max_span_deg=MAX_SPAN_DEG)
    return HTMLResponse(html, headers=security_headers(config))


@router.get("/map/assets/{path:path}")
def map_asset(path: str) -> Response:
    found = asset(path)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    content, media_type = found
    return Response(content, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
