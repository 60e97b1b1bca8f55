"""The fleetpulse HTTP API: read access to vehicles and their latest state for operators and
service centres.

Owns: the public surface of the package. The factory is the only entry point; settings are read by
whoever calls it (the CLI or a test), never here.
"""

from api.app import API_VERSION, create_app
from api.map_page import MapConfig

__all__ = ["API_VERSION", "MapConfig", "create_app"]
