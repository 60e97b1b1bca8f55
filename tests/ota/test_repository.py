"""The TUF repository on disk, its keys and lifetimes, and its HTTP server, down to the agent's
verifier fetching through the real server."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tuf.api.metadata import Metadata

from edge_agent.ota.fetcher import HttpFetcher
from edge_agent.ota.verify import UpdateRejected, VerifierConfig, verify_update
from ota import keys
from ota.expiry import ExpiryPolicy, due, refresh_plan
from ota.repository import OtaRepository, RepositoryError
from ota.server import serving_in_thread

IMAGE = bytes(range(256)) * 400  # 102,400 bytes
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def repo(tmp_path: Path) -> OtaRepository:
    keys.init_keys(tmp_path / "keys")
    repository = OtaRepository(tmp_path / "repo", tmp_path / "keys")
    repository.create()
    return repository


def version(repo: OtaRepository, role: str) -> int:
    name = "timestamp.json" if role == "timestamp" else f"{max_version(repo, role)}.{role}.json"
    return Metadata.from_file(str(repo.metadata_dir / name)).signed.version


def max_version(repo: OtaRepository, role: str) -> int:
    return max(int(p.name.split(".")[0]) for p in repo.metadata_dir.glob(f"*.{role}.json"))


def test_keys_are_private_files_never_overwritten(tmp_path: Path) -> None:
    written = keys.init_keys(tmp_path / "keys")
    assert sorted(p.name for p in written) == sorted(keys.ALL_KEY_FILES)
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in written)
    with pytest.raises(keys.SigningKeyError, match="never overwritten"):
        keys.init_keys(tmp_path / "keys")
    (tmp_path / "keys" / "targets.pem").chmod(0o644)
    with pytest.raises(keys.SigningKeyError, match="open to group or others"):
        keys.load_signers(tmp_path / "keys", "targets")


def test_encrypted_keys_need_their_passphrase(tmp_path: Path) -> None:
    keys.init_keys(tmp_path / "keys", passphrase="correct horse")
    assert len(keys.load_signers(tmp_path / "keys", "root", "correct horse")) == keys.ROOT_KEYS
    with pytest.raises(keys.SigningKeyError, match="cannot load"):
        keys.load_signers(tmp_path / "keys", "root")


def test_the_key_directory_may_not_be_served(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="must not be inside"):
        OtaRepository(tmp_path / "repo", tmp_path / "repo" / "keys")


def test_root_needs_two_of_three_root_keys_and_lists_the_online_keys(repo: OtaRepository) -> None:
    root = Metadata.from_bytes(repo.root_bytes())
    assert root.signed.roles["root"].threshold == keys.ROOT_THRESHOLD == 2
    assert len(root.signed.roles["root"].keyids) == 3 and len(root.signatures) == 3
    root.verify_delegate("root", root)
    for role in keys.ONLINE_ROLES:
        assert len(root.signed.roles[role].keyids) == 1
    with pytest.raises(RepositoryError, match="already holds"):
        repo.create()


def test_publish_adds_a_target_with_custom_metadata_and_resigns_the_chain(
    repo: OtaRepository, tmp_path: Path
) -> None:
    artifact = tmp_path / "ecm-b12.bin"
    artifact.write_bytes(IMAGE)
    published = repo.publish(artifact, ecu="ECM", version="4.2.1", hardware_ids=("ecm-b12", "ecm-b13"))
    assert published.name == "ECM/4.2.1/ecm-b12.bin" and published.changed
    assert (version(repo, "targets"), version(repo, "snapshot"), version(repo, "timestamp")) == (2, 2, 2)
    [listed] = repo.list_targets()
    assert listed["hardware_ids"] == ["ecm-b12", "ecm-b13"] and listed["ecu"] == "ECM"
    assert listed["length_bytes"] == len(IMAGE)
    stored = repo.targets_dir / "ECM" / "4.2.1" / f"{published.sha256}.ecm-b12.bin"
    assert stored.read_bytes() == IMAGE
    again = repo.publish(artifact, ecu="ECM", version="4.2.1", hardware_ids=("ecm-b12", "ecm-b13"))
    assert not again.changed and version(repo, "targets") == 2
    artifact.write_bytes(b"other bytes")
    with pytest.raises(RepositoryError, match="other content"):
        repo.publish(artifact, ecu="ECM", version="4.2.1", hardware_ids=("ecm-b12",))
    for bad in ({"version": "../x"}, {"ecu": "E C M"}, {"hardware_ids": ()}):
        fields = {"ecu": "ECM", "version": "4.3.0", "hardware_ids": ("ecm-b12",)} | bad
        with pytest.raises(RepositoryError):
            repo.publish(artifact, **fields)  # type: ignore[arg-type]
    assert version(repo, "targets") == 2


def test_refresh_resigns_the_timestamp_with_a_one_day_expiry(repo: OtaRepository) -> None:
    result = repo.refresh(now=dt.datetime.now(dt.UTC))
    assert result.resigned == {"timestamp": 2}
    left = result.expires["timestamp"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(days=1)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)  # snapshot (7 days) past half its life
    assert repo.refresh(now=later).resigned == {"snapshot": 2, "timestamp": 3}


def test_the_refresh_plan() -> None:
    policy = ExpiryPolicy()
    fresh = {role: policy.expires(role, NOW) for role in ("targets", "snapshot", "timestamp")}
    assert refresh_plan(fresh, NOW, policy) == ("timestamp",)
    assert refresh_plan(fresh, NOW + dt.timedelta(days=4), policy) == ("snapshot", "timestamp")
    assert refresh_plan(fresh, NOW + dt.timedelta(days=46), policy) == ("targets", "snapshot", "timestamp")
    assert due(NOW + dt.timedelta(hours=11), NOW, 86_400) and not due(
        NOW + dt.timedelta(hours=13), NOW, 86_400
    )


# -- the HTTP server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(repo: OtaRepository, tmp_path: Path) -> Iterator[tuple[OtaRepository, str]]:
    artifact = tmp_path / "ecm.bin"
    artifact.write_bytes(IMAGE)
    repo.publish(artifact, ecu="ECM", version="4.2.1", hardware_ids=("ecm-b12",))
    with serving_in_thread(repo.repo_dir) as url:
        yield repo, url


def test_the_server_honours_range_requests(served: tuple[OtaRepository, str]) -> None:
    repo, url = served
    [target] = repo.list_targets()
    path = f"{url}targets/ECM/4.2.1/{target['sha256']}.ecm.bin"
    whole = httpx.get(path)
    assert whole.status_code == 200 and whole.content == IMAGE
    assert whole.headers["accept-ranges"] == "bytes"
    part = httpx.get(path, headers={"Range": "bytes=1000-"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-{len(IMAGE) - 1}/{len(IMAGE)}"
    assert part.content == IMAGE[1000:]
    middle = httpx.get(path, headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == IMAGE[10:20]
    assert httpx.get(path, headers={"Range": f"bytes={len(IMAGE)}-"}).status_code == 416
    timestamp = httpx.get(f"{url}metadata/timestamp.json")
    assert timestamp.status_code == 200 and timestamp.headers["cache-control"] == "no-cache"
    assert "immutable" in httpx.get(f"{url}metadata/1.root.json").headers["cache-control"]


def test_the_server_serves_nothing_but_the_repository(served: tuple[OtaRepository, str]) -> None:
    _, url = served
    for path in (
        "metadata/..%2F.lock",
        "targets/../.lock",
        "metadata/.lock",
        "targets/ECM",
        "keys/root-1.pem",
        "targets/ECM/4.2.1/..%2F..%2F..%2Fmetadata%2Froot.json",
        "metadata/nothing.json",
    ):
        assert httpx.get(url + path).status_code == 404, path


def test_the_agent_verifies_and_resumes_through_the_real_server(
    served: tuple[OtaRepository, str], tmp_path: Path
) -> None:
    repo, url = served
    shipped = tmp_path / "root.json"
    shipped.write_bytes(repo.root_bytes())
    config = VerifierConfig(url, shipped, tmp_path / "tuf", tmp_path / "downloads")
    [target] = repo.list_targets()
    config.download_dir.mkdir()
    (config.download_dir / f"{target['sha256']}.part").write_bytes(IMAGE[:40_000])  # an earlier try broke off

    class Recording(HttpFetcher):
        offsets: list[int] = []

        def _fetch_from(self, url: str, offset: int):  # noqa: ANN202
            if "/targets/" in url:
                self.offsets.append(offset)
            return super()._fetch_from(url, offset)

    fetcher = Recording()
    verified = verify_update(
        config, target="ECM/4.2.1/ecm.bin", ecu="ECM", version="4.2.1", hardware_id="ecm-b12", fetcher=fetcher
    )
    assert fetcher.offsets == [40_000]
    assert verified.path.read_bytes() == IMAGE and verified.sha256 == target["sha256"]
    with pytest.raises(UpdateRejected) as caught:
        verify_update(
            config,
            target="ECM/4.2.1/ecm.bin",
            ecu="ECM",
            version="4.2.1",
            hardware_id="ecm-x",
            fetcher=fetcher,
        )
    assert caught.value.reason == "wrong_hardware_id"
