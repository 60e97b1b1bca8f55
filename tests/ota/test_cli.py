"""`fleet ota`: keys, init, publish, refresh and list as an operator runs them, with --json; no key
material ever printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli import app

runner = CliRunner()


def run(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, ["ota", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args and code == 0 else {"output": result.output}


def test_the_operator_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEET_OTA_KEY_PASSPHRASE", raising=False)
    keys, repo = str(tmp_path / "keys"), str(tmp_path / "repo")
    made = run("keys", "init", "--keys-dir", keys, "--json")
    assert made["root_threshold"] == "2 of 3" and len(made["files"]) == 6 and made["encrypted"] is False
    assert "PRIVATE KEY" not in json.dumps(made)
    assert "never overwritten" in run("keys", "init", "--keys-dir", keys, code=1)["output"]
    assert run("init", "--repo-dir", repo, "--keys-dir", keys, "--json")["root_version"] == 1
    artifact = tmp_path / "ecm.bin"
    artifact.write_bytes(b"\x7fELF" + bytes(5000))
    published = run(
        "publish", str(artifact), "--repo-dir", repo, "--keys-dir", keys,
        "--ecu", "ECM", "--version", "4.2.1",
        "--hardware-id", "ecm-b12", "--hardware-id", "ecm-b13", "--json",
    )  # fmt: skip
    assert published["target"] == "ECM/4.2.1/ecm.bin" and published["hardware_ids"] == ["ecm-b12", "ecm-b13"]
    assert published["targets_version"] == 2 and published["length_bytes"] == 5004
    refreshed = run("refresh", "--repo-dir", repo, "--keys-dir", keys, "--json")
    assert refreshed["resigned"] == {"timestamp": 3} and refreshed["root_expiring"] is False
    [listed] = json.loads(runner.invoke(app, ["ota", "list", "--repo-dir", repo, "--json"]).stdout)
    assert listed["sha256"] == published["sha256"]
    failed = run("publish", str(artifact), "--repo-dir", repo, "--keys-dir", keys, "--ecu", "ECM",
                 "--version", "../4", "--hardware-id", "x", code=1)  # fmt: skip
    assert "version" in failed["output"]
