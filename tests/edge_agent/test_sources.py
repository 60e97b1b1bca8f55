"""Sources: CAN on python-can's virtual bus with the shipped DBC, OBD-II against ELM327-emulator,
and the simulated car."""

from __future__ import annotations

import time

import can
import cantools
import numpy as np
import pytest

from contract.signals import BY_PATH
from edge_agent.sources import SOURCE_KINDS, MemorySource, make_source
from edge_agent.sources.can_bus import DEMO_DBC, DEMO_SIGNAL_MAP, CanSource
from edge_agent.sources.simulated import SimulatedSource
from tests.edge_agent.conftest import EMULATED_DTCS


def test_demo_dbc_maps_onto_the_catalogue() -> None:
    db = cantools.database.load_file(str(DEMO_DBC))
    names = {f"{m.name}.{s.name}" for m in db.messages for s in m.signals}
    assert set(DEMO_SIGNAL_MAP) <= names
    assert set(DEMO_SIGNAL_MAP.values()) <= set(BY_PATH)


def test_can_source_decodes_filters_and_throttles() -> None:
    db = cantools.database.load_file(str(DEMO_DBC))
    channel = f"fleet-test-{time.time_ns()}"
    sender = can.Bus(interface="virtual", channel=channel)
    source = CanSource(interface="virtual", channel=channel, throttle_s=10.0)
    source.open()
    try:
        dyn = db.get_message_by_name("VehicleDynamics")
        eng = db.get_message_by_name("EngineStatus")
        noise = db.get_message_by_name("InfotainmentDisplay")
        for speed in (87.65, 99.0):  # the second frame arrives within throttle_s: skipped
            sender.send(
                can.Message(
                    arbitration_id=dyn.frame_id,
                    is_extended_id=False,
                    data=dyn.encode(
                        {
                            "VehicleSpeed": speed,
                            "AccelLongitudinal": -4.5,
                            "AccelLateral": 0.3,
                            "AccelVertical": 0,
                        }
                    ),
                )
            )
        sender.send(
            can.Message(
                arbitration_id=eng.frame_id,
                is_extended_id=False,
                data=eng.encode(
                    {
                        "EngineSpeed": 2500,
                        "CoolantTemperature": 91,
                        "FuelLevel": 50.196,
                        "BatteryVoltage": 14.2,
                    }
                ),
            )
        )
        for _ in range(50):
            sender.send(can.Message(arbitration_id=noise.frame_id, is_extended_id=False, data=bytes(8)))
        time.sleep(0.05)
        reading = source.read(
            [
                "Vehicle.Speed",
                "Vehicle.Acceleration.Longitudinal",
                "Vehicle.Powertrain.CombustionEngine.Speed",
                "Vehicle.LowVoltageBattery.CurrentVoltage",
            ],
            0.1,
        )
        assert reading.values == pytest.approx(
            {
                "Vehicle.Speed": 87.65,
                "Vehicle.Acceleration.Longitudinal": -4.5,
                "Vehicle.Powertrain.CombustionEngine.Speed": 2500.0,
                "Vehicle.LowVoltageBattery.CurrentVoltage": 14.2,
            }
        )
        assert source.frames_received == 3  # the 50 unmapped frames were filtered before us
        assert source.frames_decoded == 2
    finally:
        source.close()
        sender.shutdown()


@pytest.mark.timeout(60)
def test_obd_source_reads_pids_and_stored_dtcs(obd_source) -> None:  # noqa: ANN001
    paths = sorted(obd_source.available_paths)
    assert "Vehicle.Speed" in paths and "Vehicle.LowVoltageBattery.CurrentVoltage" in paths
    reading = obd_source.read(paths, 1.0)
    assert set(reading.values) == set(paths)
    assert 0 <= reading.values["Vehicle.Speed"] <= 400
    assert 0 < reading.values["Vehicle.Powertrain.CombustionEngine.Speed"] < 10_000
    assert 5 < reading.values["Vehicle.LowVoltageBattery.CurrentVoltage"] < 20
    expected = {f"P{code}" for code in EMULATED_DTCS}
    assert reading.dtcs == expected


def test_simulated_source_is_seeded_and_quantised() -> None:
    clock = iter(range(0, 10**10, 100_000_000))
    a = SimulatedSource(seed=5, clock_ns=lambda: next(clock))
    values = a.read(list(BY_PATH), 0.0).values
    assert set(values) == set(BY_PATH)
    assert values["Vehicle.Speed"] == pytest.approx(round(values["Vehicle.Speed"], 2))
    assert np.isfinite(list(values.values())).all()


def test_registry_and_memory_source() -> None:
    assert set(SOURCE_KINDS) == {"simulated", "memory", "obd", "can"}
    src = make_source("memory")
    assert isinstance(src, MemorySource)
    src.set({"Vehicle.Speed": 12.0, "Vehicle.Acceleration.Lateral": float("inf")})
    assert src.read(["Vehicle.Speed", "Vehicle.Acceleration.Lateral", "Not.A.Path"], 0).values == {
        "Vehicle.Speed": 12.0
    }
    with pytest.raises(ValueError):
        make_source("flux-capacitor")
