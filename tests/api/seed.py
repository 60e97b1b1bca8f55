"""The data every API test module works on: five vehicles in two service centres (and one in
none), their latest state, DTC reports and a status; and one token per caller kind."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from api.auth import Role, create_token

TS = "2025-03-01T10:00:00+00:00"
SPEED = "Vehicle.Speed"
TYRE_FL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
VEHICLES = [  # vehicle_id, model, service_centre_id
    ("VIN-N1", "Model N", "sc-north"),
    ("VIN-N2", "Model N", "sc-north"),
    ("VIN-N3", None, "sc-north"),  # registered, no data yet
    ("VIN-S1", "Model S", "sc-south"),
    ("VIN-U1", None, None),  # not assigned to any centre
]
LATEST = {
    "VIN-N1": {
        SPEED: {"value": 42.5, "ts": TS},
        TYRE_FL: {"value": 231.0, "ts": "2025-03-01T09:59:58+00:00"},
    },
    "VIN-N2": {SPEED: {"value": 0.0, "ts": TS}},
    "VIN-S1": {SPEED: {"value": 88.0, "ts": TS}, "Vehicle.Future.Signal": {"value": 1.0, "ts": TS}},
}
DTC_REPORTS = [  # vehicle_id, ts, codes
    ("VIN-N1", "2025-03-01T09:00:00+00:00", ["P0301", "P0302"]),
    ("VIN-N1", TS, ["P0128"]),
    ("VIN-S1", TS, ["C0035"]),
]


def seed(url: str) -> None:
    """Replace the database's vehicles, fleets, tokens, reports and statuses with the data above."""
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE vehicles, api_tokens, dtc_reports, vehicle_status CASCADE")
        conn.execute("TRUNCATE vehicle_models, service_centres, fleets CASCADE")
        conn.execute(
            "INSERT INTO vehicle_models (model_id, make, model, powertrain, cylinders) "
            "VALUES ('Model N', 'Acme', 'N', 'ice', 4), ('Model S', 'Acme', 'S', 'bev', 0)"
        )
        conn.execute(
            "INSERT INTO service_centres (service_centre_id, name)"
            " VALUES ('sc-north', 'North'), ('sc-south', 'South')"
        )
        for vehicle_id, model, centre in VEHICLES:
            conn.execute(
                "INSERT INTO vehicles (vehicle_id, last_seen_at, model_id, service_centre_id) "
                "VALUES (%s, %s, %s, %s)",
                (vehicle_id, TS if vehicle_id in LATEST else None, model, centre),
            )
        for vehicle_id, signals in LATEST.items():
            conn.execute(
                "INSERT INTO vehicle_latest (vehicle_id, ts, signals) VALUES (%s, %s, %s)",
                (vehicle_id, TS, Jsonb(signals)),
            )
        conn.execute(
            "INSERT INTO vehicle_status (vehicle_id, state, details, reported_at) VALUES (%s, %s, %s, %s)",
            ("VIN-N1", "online", Jsonb({"state": "online", "campaign_id": "brakes", "queue_rows": 0}), TS),
        )
        for vehicle_id, ts, codes in DTC_REPORTS:
            conn.execute(
                "INSERT INTO dtc_reports (vehicle_id, ts, codes, agent_version, software) "
                "VALUES (%s, %s, %s, '0.1.0', '{\"ECM\": \"4.2.0\"}')",
                (vehicle_id, ts, codes),
            )


def create_tokens(url: str) -> dict[str, str]:
    """An admin token and one per service centre, by caller kind."""
    with psycopg.connect(url) as conn:
        return {
            "admin": create_token(conn, "ops", Role.ADMIN),
            "north": create_token(conn, "north-desk", Role.SERVICE_CENTRE, "sc-north"),
            "south": create_token(conn, "south-desk", "service_centre", "sc-south"),
        }
