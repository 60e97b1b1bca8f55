"""`fleet campaigns show` and `fleet campaigns set`: an operator reads and changes a campaign's
delivery settings (waves, thresholds, soak, offer timeout, urgency, maintenance window, consent).
Registered by `fleet.cli` onto the `campaigns` group of `fleet.cli_remedies`; what may change and
when is `ota.campaign_settings`'s rule (docs/ota.md, "Campaign settings")."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fleet.cli_options import JsonOpt
from fleet.cli_remedies import ActorOpt, campaigns_app

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    """The commands join the `campaigns` group registered by cli_remedies."""
    global _settings
    _settings = settings


def _as_json(campaign_id: int, status: str, settings: Any) -> dict[str, Any]:
    row = settings.as_row()
    row["waves_pct"] = list(settings.waves_pct)
    row["forced_after"] = None if settings.forced_after is None else settings.forced_after.isoformat()
    return {"campaign_id": campaign_id, "status": status, **row}


def _print(shown: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(shown))
        return
    for key, value in shown.items():
        print(f"{key:18} {value}")


@campaigns_app.command("show")
def show(campaign_id: int, as_json: JsonOpt = False) -> None:
    """A campaign's status and delivery settings."""
    from fleet.runtime import migrated_database
    from ota.campaign_edit import read_settings

    with migrated_database(_settings()) as conn:
        try:
            status, settings = read_settings(conn, campaign_id)
        except LookupError as exc:
            raise typer.BadParameter(str(exc), param_hint="CAMPAIGN_ID") from None
    _print(_as_json(campaign_id, status.value, settings), as_json)


def _forced_after(text: str) -> dt.datetime:
    from ota.campaign_settings import SettingsError

    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"forced_after {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise SettingsError("forced_after needs a time zone (e.g. 2027-01-15T00:00:00+00:00)")
    return when


@campaigns_app.command("set")
def set_settings(
    campaign_id: int,
    by: ActorOpt,
    waves: Annotated[
        str | None, typer.Option(help="Cumulative wave shares in percent, e.g. 1,10,50,100 (before start).")
    ] = None,
    success_threshold: Annotated[
        float | None, typer.Option(help="Share of a wave that must succeed to open the next, (0, 1].")
    ] = None,
    error_threshold: Annotated[
        float | None, typer.Option(help="Share of a wave whose failures pause the campaign, (0, 1].")
    ] = None,
    max_failures: Annotated[
        int | None, typer.Option(help="Failures over the campaign that pause it.")
    ] = None,
    soak_s: Annotated[float | None, typer.Option(help="Seconds an update must stay healthy.")] = None,
    offer_timeout_s: Annotated[
        float | None, typer.Option(help="Seconds without a report before an offer times out.")
    ] = None,
    urgency: Annotated[str | None, typer.Option(help="soft, forced or forced_after.")] = None,
    forced_after: Annotated[
        str | None, typer.Option(help="ISO 8601 time with zone, from which a forced_after offer is forced.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Maintenance window HH:MM-HH:MM@Zone/Name, or none for any time.")
    ] = None,
    consent: Annotated[
        bool | None, typer.Option("--consent/--no-consent", help="Whether the owner must consent.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Change a campaign's delivery settings (waves only before it starts; the rest also while it
    is paused; never while it runs). The change is recorded in the campaign's history."""
    from fleet.runtime import migrated_database
    from ota.campaign_edit import change_settings, read_settings
    from ota.campaign_settings import SettingsError, parse_waves, parse_window

    try:
        change: dict[str, Any] = {}
        if waves is not None:
            change["waves_pct"] = parse_waves(waves)
        given = {
            "success_threshold": success_threshold, "error_threshold": error_threshold,
            "max_failures": max_failures, "soak_s": soak_s, "offer_timeout_s": offer_timeout_s,
            "urgency": urgency, "consent_required": consent,
        }  # fmt: skip
        change.update({name: value for name, value in given.items() if value is not None})
        if forced_after is not None:
            change["forced_after"] = _forced_after(forced_after)
        if window is not None:
            change["maintenance_window"] = parse_window(window)
        with migrated_database(_settings()) as conn:
            change_settings(conn, campaign_id, change, by, reason)
            status, settings = read_settings(conn, campaign_id)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="CAMPAIGN_ID") from None
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    _print(_as_json(campaign_id, status.value, settings), as_json)
