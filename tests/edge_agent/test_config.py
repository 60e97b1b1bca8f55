"""agent.toml: secrets from env or file only, never in the file or logs; the shipped example loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.config import ConfigError, load_config
from fleet.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_example_config_loads_with_password_from_env() -> None:
    cfg = load_config(REPO / "deploy" / "agent.example.toml", {"FLEET_AGENT_MQTT_PASSWORD": "s3cret-pw"})
    assert cfg.vehicle_id == "VEH-0001" and cfg.endpoint.tls and cfg.endpoint.port == 8883
    assert cfg.endpoint.username == "VEH-0001" and cfg.endpoint.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(cfg)
    assert cfg.flush_interval_s <= 1.0
    assert [(e.ecu, e.version, e.hardware_id) for e in cfg.software] == [
        ("BCM", "1.7.0", "bcm-a3"),
        ("ECM", "4.2.1", "ecm-b12"),
    ]


def test_a_bad_software_inventory_stops_the_agent_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[vehicle]\nid = "V1"\n[[vehicle.software]]\necu = "E/CM"\nversion = "1"\n[broker]\nurl = "mqtt://h:1"\n'
    )
    with pytest.raises(ConfigError, match=r"\[\[vehicle.software\]\]: ECU name"):
        load_config(path, {})


def _write(tmp_path: Path, broker: str, sampling: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[vehicle]\nid = "V1"\n[broker]\n{broker}\n{sampling}')
    return path


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    cfg = load_config(_write(tmp_path, 'url = "mqtt://h:1883"\npassword_file = "pw"'), {})
    assert cfg.endpoint.password == "from-file"
    assert cfg.state_dir == (tmp_path / "state").resolve()


@pytest.mark.parametrize(
    ("broker", "sampling"),
    [
        ('url = "mqtt://h:1883"\npassword = "inline"', ""),
        ('url = "mqtt://V1:inline@h:1883"', ""),
        ('url = "mqtt://h:1883"\npassword_env = "NOT_SET_ANYWHERE"', ""),
        ('url = "http://h"', ""),
        ('url = "mqtt://h:1883"', "[sampling]\nflush_interval_s = 5.0"),
    ],
)
def test_rejected_configs_never_echo_secrets(tmp_path: Path, broker: str, sampling: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, broker, sampling), {})
    assert "inline" not in str(info.value)


def test_cli_agent_refuses_a_bad_config_and_validates_campaigns(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["agent", "--config", str(_write(tmp_path, 'url = "mqtt://h:1"\npassword = "x"'))]
    )
    assert result.exit_code == 2
    campaign = tmp_path / "c.json"
    campaign.write_text('{"campaign_id": "c", "version": 1, "signals": [{"path": "Vehicle.Speed"}]}')
    assert runner.invoke(app, ["campaign", "validate", str(campaign)]).exit_code == 0
    campaign.write_text('{"campaign_id": "c", "version": 1, "signals": [{"path": "Vehicle.Warp"}]}')
    assert runner.invoke(app, ["campaign", "validate", str(campaign)]).exit_code == 1


def test_lean_entry_point_refuses_a_bad_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = _write(tmp_path, 'url = "mqtt://h:1"\npassword = "inline-secret"')
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "--config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "inline-secret" not in proc.stderr


def test_the_ota_section_is_optional_and_checked(tmp_path: Path) -> None:
    base = '[vehicle]\nid = "V1"\n[broker]\nurl = "mqtt://h:1"\n'
    path = tmp_path / "agent.toml"
    path.write_text(base)
    assert load_config(path, {}).ota is None  # OTA off
    path.write_text(
        base + '[ota]\ntrusted_root = "ota/root.json"\nreport_key = "/etc/k.pem"\nmin_battery_v = 12.4\n'
        "check_interval_s = 30\n"
    )
    ota = load_config(path, {}).ota
    assert ota is not None and ota.trusted_root == tmp_path / "ota" / "root.json"
    assert ota.report_key == Path("/etc/k.pem") and ota.min_battery_v == 12.4 and ota.check_interval_s == 30.0
    assert ota.min_parked_s == 60.0 and ota.give_up_after_s == 30 * 86400.0
    for bad, message in (
        ('report_key = "k.pem"\n', r"\[ota\] trusted_root"),
        ('trusted_root = "r.json"\n', r"\[ota\] report_key"),
        ('trusted_root = "r"\nreport_key = "k"\ncheck_interval_s = 0\n', "check_interval_s must be"),
        ('trusted_root = "r"\nreport_key = "k"\nmin_battery_v = nan\n', "min_battery_v must be"),
        ('trusted_root = "r"\nreport_key = "k"\nmin_batery_v = 12\n', "unknown keys: min_batery_v"),
        ('trusted_root = "r"\nreport_key = "k"\nmin_battery_v = "low"\n', "could not convert"),
    ):
        path.write_text(base + "[ota]\n" + bad)
        with pytest.raises(ConfigError, match=message):
            load_config(path, {})


def test_the_example_config_turns_ota_on() -> None:
    cfg = load_config(REPO / "deploy" / "agent.example.toml", {"FLEET_AGENT_MQTT_PASSWORD": "pw"})
    assert cfg.ota is not None and cfg.ota.trusted_root == Path("/etc/fleetpulse/ota-root.json")
    assert cfg.ota.report_key == Path("/etc/fleetpulse/report-key.pem")
