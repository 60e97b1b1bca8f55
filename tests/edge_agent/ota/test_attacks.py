"""Every TUF attack the issue names, against the agent's verifier over an in-memory repository.

Each test changes one thing on the repository, asserts the exact error (our reason and python-tuf's
exception under it) and that the trusted state is unchanged: the metadata versions the agent
trusts on disk, and no artifact where the installer would take it."""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path
from unittest import mock

import pytest
from tuf.api import exceptions
from tuf.api.metadata import Metadata

from contract.software import EcuSoftware
from edge_agent.ota.verify import (
    UpdateRejected,
    UpdateUnavailable,
    VerifiedTarget,
    VerifierConfig,
    hardware_id_of,
    verify_update,
)
from tests.tuf_simulator import BASE_URL, RepositorySimulator

IMAGE = bytes(range(256)) * 40  # 10,240 bytes
TARGET = "ECM/4.2.1/ecm.bin"


@pytest.fixture
def sim() -> RepositorySimulator:
    sim = RepositorySimulator()
    sim.add_target(IMAGE)
    sim.publish_targets()
    return sim


@pytest.fixture
def config(tmp_path: Path, sim: RepositorySimulator) -> VerifierConfig:
    shipped = tmp_path / "provisioning" / "root.json"
    shipped.parent.mkdir()
    shipped.write_bytes(sim.signed_roots[0])
    return VerifierConfig(BASE_URL, shipped, tmp_path / "state" / "tuf", tmp_path / "state" / "downloads")


def verify(config: VerifierConfig, sim: RepositorySimulator, **offer: str) -> VerifiedTarget:
    fields = {"target": TARGET, "ecu": "ECM", "version": "4.2.1", "hardware_id": "ecm-b12"} | offer
    return verify_update(config, fetcher=sim, **fields)


def trusted_version(config: VerifierConfig, role: str) -> int:
    return Metadata.from_file(str(config.metadata_dir / f"{role}.json")).signed.version


def trusted_versions(config: VerifierConfig) -> dict[str, int]:
    return {role: trusted_version(config, role) for role in ("root", "timestamp", "snapshot", "targets")}


def artifacts(config: VerifierConfig) -> list[str]:
    return sorted(p.name for p in config.download_dir.iterdir()) if config.download_dir.exists() else []


def rejected(
    config: VerifierConfig, sim: RepositorySimulator, reason: str, cause: type[Exception], **offer: str
):
    with pytest.raises(UpdateRejected) as caught:
        verify(config, sim, **offer)
    assert caught.value.reason == reason, caught.value
    assert isinstance(caught.value.__cause__, cause), repr(caught.value.__cause__)
    return caught.value


def test_a_signed_update_verifies_into_a_file_with_its_metadata(config, sim) -> None:
    verified = verify(config, sim)
    info = sim.targets.targets[TARGET]
    assert verified.path.read_bytes() == IMAGE
    assert (verified.ecu, verified.version, verified.hardware_id) == ("ECM", "4.2.1", "ecm-b12")
    assert verified.sha256 == info.hashes["sha256"] and verified.length_bytes == len(IMAGE)
    assert verified.target == TARGET
    assert trusted_versions(config) == {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}


def test_no_trust_on_first_use_the_shipped_root_decides(config, sim, tmp_path: Path) -> None:
    other = RepositorySimulator()  # a repository with keys the vehicle was not provisioned with
    other.add_target(IMAGE)
    other.publish_targets()
    rejected(config, other, "bad_signature", exceptions.UnsignedMetadataError)
    assert not (config.metadata_dir / "timestamp.json").exists()
    assert artifacts(config) == []


def test_arbitrary_software_targets_signed_by_a_key_root_does_not_list(config, sim) -> None:
    verify(config, sim)
    before = trusted_versions(config)
    sim.signers["targets"] = [sim.signers["snapshot"][0]]  # an attacker's key, not the targets key
    sim.add_target(b"malware" * 100, version="6.6.6")
    sim.publish_targets()
    error = rejected(
        config, sim, "bad_signature", exceptions.UnsignedMetadataError, target="ECM/6.6.6/ecm.bin"
    )
    assert "targets" in str(error.__cause__)
    # The new snapshot and timestamp are genuine (and trusted); the forged targets is not.
    assert trusted_version(config, "targets") == before["targets"] == 2
    assert not any("6.6.6" in name or name.endswith(".part") for name in artifacts(config))


def test_arbitrary_software_a_new_root_signed_below_the_threshold(config, sim) -> None:
    verify(config, sim)
    sim.root.version += 1
    sim.root.roles["targets"].keyids.clear()  # the attacker's root would hand targets to its own key
    sim.root_signers = sim.signers["root"][:1]  # one signature of the two root requires
    sim.publish_root()
    error = rejected(config, sim, "bad_signature", exceptions.UnsignedMetadataError)
    assert "root" in str(error.__cause__)
    assert trusted_version(config, "root") == 1


def test_rollback_to_an_older_timestamp(config, sim) -> None:
    verify(config, sim)
    before = trusted_versions(config)
    sim.timestamp.version = 1  # the signed timestamp of before the update, replayed
    error = rejected(config, sim, "bad_version", exceptions.BadVersionNumberError)
    assert "timestamp" in str(error.__cause__)
    assert trusted_versions(config) == before


def test_rollback_to_an_older_snapshot(config, sim) -> None:
    verify(config, sim)
    before = trusted_versions(config)
    sim.snapshot.version = 1
    sim.update_timestamp()
    error = rejected(config, sim, "bad_version", exceptions.BadVersionNumberError)
    assert "snapshot" in str(error.__cause__)
    assert {r: trusted_version(config, r) for r in ("snapshot", "targets")} == {
        r: before[r] for r in ("snapshot", "targets")
    }


def test_freeze_a_new_timestamp_that_has_expired(config, sim) -> None:
    verify(config, sim)
    before = trusted_versions(config)
    sim.timestamp.expires = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    sim.update_timestamp()
    error = rejected(config, sim, "expired_metadata", exceptions.ExpiredMetadataError)
    assert "timestamp" in str(error.__cause__)
    assert {r: trusted_version(config, r) for r in ("snapshot", "targets")} == {
        r: before[r] for r in ("snapshot", "targets")
    }


def test_freeze_the_same_metadata_served_after_it_expired(config, sim) -> None:
    """A frozen mirror keeps serving the timestamp the vehicle already has; two days later the
    vehicle notices, because the timestamp lives one day."""
    sim.timestamp.expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    sim.update_timestamp()
    verify(config, sim)
    before = trusted_versions(config)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    clock = types.SimpleNamespace(
        datetime=types.SimpleNamespace(now=lambda tz=None: later), timezone=dt.timezone
    )
    with mock.patch("tuf.ngclient._internal.trusted_metadata_set.datetime", clock):
        error = rejected(config, sim, "expired_metadata", exceptions.ExpiredMetadataError)
    assert "timestamp" in str(error.__cause__)
    assert trusted_versions(config) == before


def test_mix_and_match_targets_the_snapshot_does_not_list(config, sim) -> None:
    """A mirror serves a new snapshot (listing targets v3) with a targets file from another time."""
    sim.targets.version = 3
    sim.update_snapshot()
    sim.targets.version = 2  # what is served is not what the snapshot lists
    error = rejected(config, sim, "bad_version", exceptions.BadVersionNumberError)
    assert "targets" in str(error.__cause__)
    assert not (config.metadata_dir / "targets.json").exists()
    assert artifacts(config) == []


def test_mix_and_match_a_new_targets_the_snapshot_does_not_list(config, sim) -> None:
    """A targets version that no snapshot lists never replaces the trusted one."""
    verify(config, sim)
    before = trusted_versions(config)
    sim.add_target(b"other build" * 50, version="4.2.2")
    sim.targets.version += 1  # served, but the snapshot (and timestamp) still list targets v2
    with pytest.raises(UpdateRejected) as caught:
        verify(config, sim, target="ECM/4.2.2/ecm.bin", version="4.2.2")
    assert caught.value.reason == "unknown_target"
    assert trusted_versions(config) == before


def test_endless_data_an_artifact_longer_than_its_signed_length(config, sim) -> None:
    sim.extra_bytes = b"\0" * 5000
    rejected(config, sim, "too_long", exceptions.DownloadLengthMismatchError)
    assert artifacts(config) == []  # neither a verified file nor a partial one is kept


def test_endless_data_metadata_longer_than_its_limit(config, sim) -> None:
    sim.timestamp.unrecognized_fields["padding"] = "x" * 20_000  # above the 16 KiB timestamp limit
    sim.update_timestamp()
    rejected(config, sim, "too_long", exceptions.DownloadLengthMismatchError)
    assert not (config.metadata_dir / "timestamp.json").exists()


def test_wrong_hardware_id_downloads_nothing(config, sim) -> None:
    with pytest.raises(UpdateRejected) as caught:
        verify(config, sim, hardware_id="ecm-c20")
    assert caught.value.reason == "wrong_hardware_id"
    assert "ecm-c20" in caught.value.detail
    assert not [path for path, _ in sim.requests if path.startswith("/targets/")]
    assert artifacts(config) == []


def test_a_target_for_another_ecu_or_version_is_refused(config, sim) -> None:
    with pytest.raises(UpdateRejected) as caught:
        verify(config, sim, ecu="TCU")
    assert caught.value.reason == "wrong_ecu"
    with pytest.raises(UpdateRejected) as caught:
        verify(config, sim, version="4.2.0")
    assert caught.value.reason == "wrong_version"
    with pytest.raises(UpdateRejected) as caught:
        verify(config, sim, target="ECM/9.9.9/ecm.bin")
    assert caught.value.reason == "unknown_target"


def test_a_tampered_artifact_never_verifies(config, sim) -> None:
    tampered = bytearray(IMAGE)
    tampered[5000] ^= 0xFF
    sim.replace_bytes = bytes(tampered)
    rejected(config, sim, "hash_mismatch", exceptions.LengthOrHashMismatchError)
    assert artifacts(config) == []
    sim.replace_bytes = None  # the real one still verifies afterwards
    assert verify(config, sim).path.read_bytes() == IMAGE


def test_a_tampered_file_in_the_download_directory_is_fetched_again(config, sim) -> None:
    verified = verify(config, sim)
    verified.path.write_bytes(b"changed on disk")
    again = verify(config, sim)
    assert again.path == verified.path and again.path.read_bytes() == IMAGE


def test_an_interrupted_download_resumes_with_a_range_and_gives_the_same_file(config, sim) -> None:
    sim.cut_after = 4321
    with pytest.raises(UpdateUnavailable):
        verify(config, sim)
    parts = [p for p in config.download_dir.iterdir() if p.suffix == ".part"]
    assert len(parts) == 1 and parts[0].read_bytes() == IMAGE[:4321]
    sim.cut_after = None
    sim.requests.clear()
    resumed = verify(config, sim)
    assert [offset for path, offset in sim.requests if path.startswith("/targets/")] == [4321]
    assert resumed.path.read_bytes() == IMAGE
    assert not any(p.suffix == ".part" for p in config.download_dir.iterdir())


def test_a_server_that_ignores_the_range_still_gives_the_right_file(config, sim) -> None:
    sim.cut_after = 3000
    with pytest.raises(UpdateUnavailable):
        verify(config, sim)
    sim.cut_after, sim.ignore_range = None, True
    assert verify(config, sim).path.read_bytes() == IMAGE


def test_slow_retrieval_a_trickling_server_is_cut_off_and_the_download_resumes(config, sim) -> None:
    sim.seconds_per_chunk = 20.0  # 1,000-byte chunks: 50 B/s, below the 1 KiB/s floor after 60 s
    with pytest.raises(UpdateUnavailable) as caught:
        verify(config, sim)
    assert isinstance(caught.value.__cause__, exceptions.SlowRetrievalError)
    [part] = [p for p in config.download_dir.iterdir() if p.suffix == ".part"]
    kept = part.stat().st_size
    assert 0 < kept < len(IMAGE)
    sim.seconds_per_chunk = 0.0
    assert verify(config, sim).path.read_bytes() == IMAGE


def test_the_hardware_id_comes_from_the_software_inventory() -> None:
    inventory = (EcuSoftware("ECM", "4.2.0", "ecm-b12"), EcuSoftware("TCU", "1.0", ""))
    assert hardware_id_of(inventory, "ECM") == "ecm-b12"
    for ecu in ("TCU", "BCM"):  # no hardware id, or not in the inventory: nothing can fit it
        with pytest.raises(UpdateRejected) as caught:
            hardware_id_of(inventory, ecu)
        assert caught.value.reason == "unknown_ecu"
