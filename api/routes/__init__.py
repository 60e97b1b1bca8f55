"""The API's routers, gathered in one place: adding a resource means one module and one line here."""

from fastapi import APIRouter

from api.routes import health, vehicles

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(vehicles.router)

__all__ = ["api_router"]
