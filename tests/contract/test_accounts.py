"""The client-id rule (`contract.accounts`): logins, service namespaces, reserved vehicle ids."""

from __future__ import annotations

import pytest

from contract import accounts, topics
from contract.accounts import ClientIdError, login_endpoint, service_account_of
from contract.batch import is_valid_vehicle_id
from contract.credentials import vehicle_password
from contract.endpoint import MqttEndpoint


@pytest.mark.parametrize(
    ("name", "account"),
    [
        ("fleet-ingest", "fleet-ingest"),
        ("fleet-ingest-0", "fleet-ingest"),
        ("fleet-ingest-demo", "fleet-ingest"),
        ("fleet-simulator-dtc", "fleet-simulator"),
        ("fleet-ingest-", None),
        ("fleet-ingestor", None),
        ("fleet-simulators", None),
        ("VEH-1", None),
    ],
)
def test_service_namespaces(name: str, account: str | None) -> None:
    assert service_account_of(name) == account


def test_vehicle_ids_never_fall_into_a_service_namespace() -> None:
    for reserved in ("fleet-ingest", "fleet-ingest-3", "fleet-simulator", "fleet-simulator-x"):
        assert not is_valid_vehicle_id(reserved)
        with pytest.raises(ValueError):
            vehicle_password("secret", reserved)
        with pytest.raises(ValueError):
            topics.topic_for(reserved, topics.TELEMETRY)
        assert topics.parse_topic(f"fleet/v1/{reserved}/telemetry") is None
    assert is_valid_vehicle_id("fleet-ingestor") and is_valid_vehicle_id("VEH-1")


def test_login_endpoint_logs_a_service_in_as_its_client_id() -> None:
    ingest = MqttEndpoint("h", 1883, "fleet-ingest", "pw")
    worker = login_endpoint(ingest, "fleet-ingest-2")
    assert (worker.username, worker.password, worker.host) == ("fleet-ingest-2", "pw", "h")
    assert login_endpoint(ingest, "fleet-ingest") == ingest
    assert login_endpoint(MqttEndpoint("h", 1883, "fleet-ingest-1", "pw"), "fleet-ingest-demo").username == (
        "fleet-ingest-demo"
    )
    for foreign in ("fleet-simulator", "VEH-1", "ingest-1", "fleet-ingest-a/b", ""):
        with pytest.raises(ClientIdError):
            login_endpoint(ingest, foreign)


def test_login_endpoint_keeps_a_vehicle_to_its_own_id() -> None:
    vehicle = MqttEndpoint("h", 1883, "VEH-1", "pw")
    assert login_endpoint(vehicle, "VEH-1") == vehicle
    for foreign in ("VEH-2", "agent-VEH-1", "fleet-ingest"):
        with pytest.raises(ClientIdError):
            login_endpoint(vehicle, foreign)
    anonymous = MqttEndpoint("h", 1883)
    assert login_endpoint(anonymous, "anything") == anonymous


def test_may_connect_is_client_id_equals_username() -> None:
    assert accounts.may_connect("VEH-1", "VEH-1")
    assert accounts.may_connect("fleet-ingest-0", "fleet-ingest-0")
    assert not accounts.may_connect("fleet-ingest", "fleet-ingest-0")
    assert not accounts.may_connect("VEH-1", "VEH-2")
    assert not accounts.may_connect(None, "VEH-1")
    assert not accounts.may_connect("", "")


def test_provisioned_logins() -> None:
    logins = accounts.provisioned_logins(accounts.INGEST, workers=2, extra=("t0",))
    assert logins == [
        "fleet-ingest",
        "fleet-ingest-0",
        "fleet-ingest-1",
        "fleet-ingest-campaign",
        "fleet-ingest-demo",
        "fleet-ingest-simulate",
        "fleet-ingest-notify",
        "fleet-ingest-ota",
        "fleet-ingest-t0",
    ]
    assert accounts.provisioned_logins(accounts.SIMULATOR, workers=0) == [
        "fleet-simulator",
        "fleet-simulator-dtc",
        "fleet-simulator-ota",
    ]
    with pytest.raises(ValueError):
        accounts.provisioned_logins("VEH-1")


def test_permissions() -> None:
    ingest = topics.permissions_of("fleet-ingest-4")
    assert ingest.subscribe == (
        "fleet/v1/+/telemetry",
        "fleet/v1/+/status",
        "fleet/v1/+/dtc",
        "fleet/v1/+/update",
    )
    assert ingest.publish == ("fleet/v1/+/config", "fleet/v1/+/command")
    assert topics.permissions_of("fleet-simulator-dtc").publish == ingest.subscribe
    vehicle = topics.permissions_of("VEH-1")
    assert vehicle.publish == (
        "fleet/v1/VEH-1/telemetry",
        "fleet/v1/VEH-1/status",
        "fleet/v1/VEH-1/dtc",
        "fleet/v1/VEH-1/update",
    )
    assert vehicle.subscribe == ("fleet/v1/VEH-1/config", "fleet/v1/VEH-1/command")
    assert topics.permissions_of("a/b") == topics.Permissions((), ())
