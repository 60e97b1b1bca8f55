"""The app's own route table, as a client reaches it: every API route with its full path (router
prefixes included) and methods, whatever module declared it. FastAPI 0.165 nests included routers
(`_IncludedRouter` entries in `app.routes`); `fastapi.routing.iter_route_contexts` flattens them."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts


@dataclass(frozen=True)
class AppRoute:
    path: str
    methods: frozenset[str]
    route: APIRoute


def api_routes(app: FastAPI) -> list[AppRoute]:
    """Every APIRoute of `app` (not the OpenAPI and docs pages), by full path."""
    found = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path is not None:
            methods = frozenset(getattr(context, "methods", None) or context.original_route.methods)
            found.append(AppRoute(context.path, methods, context.original_route))
    return found
