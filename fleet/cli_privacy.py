"""`fleet privacy erase-owner`: carry out an owner's erasure request (docs/privacy.md). Registered
by `fleet.cli`; what is erased and kept is `api.privacy.erasure`'s rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)
privacy_app = typer.Typer(help="Privacy: owners' erasure requests (retention runs in fleet maintain).",
                          no_args_is_help=True)  # fmt: skip


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.add_typer(privacy_app, name="privacy")


@privacy_app.command("erase-owner")
def erase_owner(
    owner_id: str,
    by: Annotated[str, typer.Option("--by", help="Who carries out the request (recorded).")],
    reason: Annotated[str, typer.Option(help="The request's reference or reason (recorded).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Erase an owner's personal data and their vehicles' raw trajectories, in one transaction;
    the hazard evidence stays, made anonymous. Exit code 2 for an unknown owner."""
    from api.privacy.erasure import erase_owner as erase
    from fleet.runtime import migrated_database

    with migrated_database(_settings()) as conn:
        try:
            report = erase(conn, owner_id, by=by, reason=reason)
        except LookupError as exc:
            raise typer.BadParameter(str(exc), param_hint="OWNER_ID") from None
    if as_json:
        print(json.dumps(asdict(report)))
    else:
        print(f"erasure {report.erasure_id}: " + ", ".join(f"{k} {v}" for k, v in asdict(report).items()
                                                         if k != "erasure_id"))  # fmt: skip
