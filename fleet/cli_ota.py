"""`fleet ota ...`: the signed-update repository (keys, init, publish, refresh, list, serve), the
vehicles' report keys and the verification of their update reports. Registered by `fleet.cli`; the
work is the `ota` package's (docs/ota.md).

The key passphrase, if any, comes from FLEET_OTA_KEY_PASSPHRASE, read here once; no key, passphrase
or key material is ever printed or logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt, print_report

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)
PASSPHRASE_ENV = "FLEET_OTA_KEY_PASSPHRASE"

ota_app = typer.Typer(
    help="Signed OTA updates: the TUF repository, its keys and server.", no_args_is_help=True
)
keys_app = typer.Typer(help="The repository's signing keys (kept offline).", no_args_is_help=True)
ota_app.add_typer(keys_app, name="keys")

RepoDir = Annotated[Path, typer.Option("--repo-dir", help="The TUF repository directory (served as is).")]
KeysDir = Annotated[
    Path, typer.Option("--keys-dir", help="The signing keys' directory (never inside the repository).")
]


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.add_typer(ota_app, name="ota")


def _passphrase() -> str | None:
    return os.environ.get(PASSPHRASE_ENV) or None


def _repository(repo_dir: Path, keys_dir: Path | None) -> Any:
    from ota.repository import OtaRepository, RepositoryError

    try:
        return OtaRepository(repo_dir, keys_dir, passphrase=_passphrase())
    except RepositoryError as exc:
        raise typer.BadParameter(str(exc)) from None


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@keys_app.command("init")
def keys_init(keys_dir: KeysDir, as_json: JsonOpt = False) -> None:
    """Create the signing keys: three root keys (two of them sign each root), one each for
    targets, snapshot and timestamp. Files are 0600 in a 0700 directory; encrypted when
    FLEET_OTA_KEY_PASSPHRASE is set. Existing keys are never overwritten."""
    from ota.keys import ROOT_KEYS, ROOT_THRESHOLD, SigningKeyError, init_keys

    try:
        written = init_keys(keys_dir, _passphrase())
    except SigningKeyError as exc:
        raise _fail(exc) from None
    print_report(
        {
            "keys_dir": str(keys_dir.resolve()),
            "files": [p.name for p in written],
            "root_threshold": f"{ROOT_THRESHOLD} of {ROOT_KEYS}",
            "encrypted": _passphrase() is not None,
        },
        as_json,
    )


@ota_app.command("init")
def init(repo_dir: RepoDir, keys_dir: KeysDir, as_json: JsonOpt = False) -> None:
    """Create the repository: root signed by a threshold of the root keys, empty targets, snapshot
    and timestamp. Ship metadata/root.json with every agent's provisioning."""
    from ota.keys import SigningKeyError
    from ota.repository import RepositoryError

    repository = _repository(repo_dir, keys_dir)
    try:
        version = repository.create()
    except (RepositoryError, SigningKeyError) as exc:
        raise _fail(exc) from None
    root = repository.metadata_dir / "root.json"
    print_report({"repo_dir": str(repository.repo_dir), "root_version": version, "root": str(root)}, as_json)


@ota_app.command("publish")
def publish(
    artifact: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The software image.")],
    repo_dir: RepoDir,
    keys_dir: KeysDir,
    ecu: Annotated[str, typer.Option(help="The ECU it is for, e.g. ECM.")],
    version: Annotated[str, typer.Option(help="Its software version, e.g. 4.2.1.")],
    hardware_id: Annotated[
        list[str], typer.Option("--hardware-id", help="A hardware id it may be installed on (repeatable).")
    ],
    name: Annotated[
        str | None, typer.Option(help="File name in the target name (default: the file's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add ARTIFACT as target <ECU>/<version>/<file name> and re-sign targets, snapshot and
    timestamp. The same bytes again change nothing; other bytes under a taken name are refused."""
    from ota.keys import SigningKeyError
    from ota.repository import RepositoryError

    try:
        published = _repository(repo_dir, keys_dir).publish(
            artifact, ecu=ecu, version=version, hardware_ids=tuple(hardware_id), file_name=name
        )
    except (RepositoryError, SigningKeyError, OSError) as exc:
        raise _fail(exc) from None
    print_report(published.as_json(), as_json)


@ota_app.command("refresh")
def refresh(repo_dir: RepoDir, keys_dir: KeysDir, as_json: JsonOpt = False) -> None:
    """Re-sign the timestamp (and snapshot or targets when half their lifetime is gone). Run it
    periodically, e.g. every 6 hours: the timestamp expires after a day. Exits 2 when root expires
    within 30 days (sign a new root with the offline keys)."""
    from ota.keys import SigningKeyError
    from ota.repository import RepositoryError

    try:
        result = _repository(repo_dir, keys_dir).refresh()
    except (RepositoryError, SigningKeyError) as exc:
        raise _fail(exc) from None
    print_report(result.as_json(), as_json)
    if result.root_expiring:
        raise typer.Exit(2)


@ota_app.command("list")
def list_targets(repo_dir: RepoDir, as_json: JsonOpt = False) -> None:
    """The published targets with their length, SHA-256, ECU, version and hardware ids."""
    import json

    from ota.repository import RepositoryError

    try:
        targets = _repository(repo_dir, None).list_targets()  # reading needs no key
    except RepositoryError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(targets))
        return
    for t in targets:
        print(f"{t['target']}  {t['length_bytes']} bytes  sha256 {t['sha256']}  hw {t.get('hardware_ids')}")


@ota_app.command("serve")
def serve(
    repo_dir: RepoDir,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8470,
) -> None:
    """Serve metadata and artifacts over HTTP (Range requests, so downloads resume). Needs no key.
    Put TLS in front of it in production."""
    import uvicorn

    from ota.server import create_app

    if not (repo_dir / "metadata" / "timestamp.json").is_file():
        raise _fail(RuntimeError(f"no repository in {repo_dir} (run `fleet ota init`)"))
    _settings()
    uvicorn.run(create_app(repo_dir), host=host, port=port, log_level="warning")


@ota_app.command("vehicle-key")
def vehicle_key(
    vehicle_id: Annotated[str, typer.Argument(help="The vehicle to provision.")],
    out: Annotated[
        Path, typer.Option("--out", help="Where to write its private key (0600, not overwritten).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Make the vehicle's report-signing key pair: the private key goes to --out for the vehicle's
    provisioning, the public key into the database (replacing the vehicle's previous one)."""
    from fleet.runtime import migrated_database
    from ota.vehicle_keys import new_key_pair, register_key, write_private_key

    pem, public = new_key_pair()
    try:
        write_private_key(out, pem)
    except OSError as exc:
        raise _fail(exc) from None
    try:
        with migrated_database(_settings()) as conn:
            key_id = register_key(conn, vehicle_id, public)
    except ValueError as exc:
        out.unlink()
        raise typer.BadParameter(str(exc)) from None
    print_report({"vehicle_id": vehicle_id, "key_id": key_id, "private_key_file": str(out)}, as_json)


@ota_app.command("verify-reports")
def verify_reports(
    limit: Annotated[int, typer.Option(min=1, help="At most this many reports.")] = 10_000,
    as_json: JsonOpt = False,
) -> None:
    """Judge the stored update reports not judged yet: signature, nonce, replay (docs/ota.md).
    Prints the count of each verdict. It only judges: `fleet ota check-reports` judges and applies
    (campaigns, inventory, audit register), and applies what this accepted at its next run."""
    from fleet.runtime import migrated_database
    from ota.reports import verify_pending

    with migrated_database(_settings()) as conn:
        counts = verify_pending(conn, limit)
    print_report(counts, as_json)
