"""`fleet remedies` and `fleet bookings`: run the remedy engine, show the catalogue and the
remedies decided, and act on booked visits. Registered by `fleet.cli`; the rules are the
`remedies` package's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli_options import JsonOpt, print_report

_settings: Callable[[], Any] = lambda: None  # noqa: E731 (set by register)
remedies_app = typer.Typer(
    help="The remedy engine: OTA patches and shop visits for alarms.", no_args_is_help=True
)
bookings_app = typer.Typer(
    help="Shop-visit bookings: list, reschedule, cancel, no-show, complete.", no_args_is_help=True
)
REMEDY_KEYS = (
    "remedy_id", "vehicle_id", "fault", "kind", "status", "rule", "reason", "details", "campaign_id",
    "created_at",
)  # fmt: skip
CAMPAIGN_KEYS = (
    "campaign_id", "name", "status", "open_wave", "ecu", "from_version", "to_version", "reason", "states",
)  # fmt: skip
BOOKING_KEYS = (
    "booking_id", "remedy_id", "vehicle_id", "service_centre_id", "skill", "starts_at", "ends_at", "deadline",
    "late", "distance_km", "status", "reason",
)  # fmt: skip
ActorOpt = Annotated[str, typer.Option("--by", help="Who acts (recorded), e.g. centre:SC-01 or owner.")]


def register(app: typer.Typer, settings: Callable[[], Any]) -> None:
    global _settings
    _settings = settings
    app.add_typer(remedies_app, name="remedies")
    app.add_typer(bookings_app, name="bookings")
    register_campaigns(app)


def _catalogue() -> Any:
    from remedies.catalogue import load_catalogue

    try:
        return load_catalogue(_settings().remedy_catalogue)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FLEET_REMEDY_CATALOGUE") from None


@remedies_app.command("run")
def run(
    follow: Annotated[bool, typer.Option(help="Keep running, every --every-s seconds.")] = False,
    every_s: Annotated[float, typer.Option(min=1.0, help="Seconds between runs with --follow.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Give every active alarm its remedy (one per alarm, however often it runs), book shop visits,
    put OTA patches into campaigns, follow escalations and clears."""
    from fleet.runtime import migrated_database
    from remedies.run import run_remedies

    settings, catalogue = _settings(), _catalogue()
    with migrated_database(settings) as conn:
        while True:
            report = run_remedies(
                conn, catalogue, auto_approve_campaigns=settings.remedy_auto_approve_campaigns
            )
            print_report(report.as_dict(), as_json)
            if not follow:
                return
            time.sleep(every_s)


@remedies_app.command("catalogue")
def catalogue(as_json: JsonOpt = False) -> None:
    """The remedy catalogue in force: each entry, what it matches and what it prescribes."""
    import dataclasses

    entries = [
        {**{k: v for k, v in dataclasses.asdict(e).items() if k != "remedy"},
         "remedy": {"kind": e.remedy.kind, **dataclasses.asdict(e.remedy)}}
        for e in _catalogue().entries
    ]  # fmt: skip
    if as_json:
        print(json.dumps(entries))
        return
    table = Table(title="remedy catalogue (the most specific matching entry wins)")
    for name in ("name", "fault", "narrowed by", "remedy"):
        table.add_column(name)
    for e in entries:
        narrow = ", ".join(
            f"{k}={e[k]}" for k in ("model_id", "powertrain", "ecu", "software_version") if e[k]
        )
        r = e["remedy"]
        if r["kind"] == "ota_patch":
            what = f"OTA {r['ecu']} -> {r['to_version'] or 'cure'}"
        else:
            what = f"visit: {r['skill']}, {r['duration_min']:.0f} min, {r['urgency'] or 'by severity'}"
        table.add_row(e["name"], e["fault"], narrow, what)
    Console().print(table)


@remedies_app.command("list")
def list_remedies(
    vehicle: Annotated[str | None, typer.Option(help="Only this vehicle.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (e.g. scheduled).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The remedies decided, newest first, with their reason."""
    _listing(
        "SELECT remedy_id, vehicle_id, fault, kind, status, rule, reason, details, campaign_id,"
        " created_at FROM remedies WHERE (%(v)s::text IS NULL OR vehicle_id = %(v)s)"
        " AND (%(s)s::text IS NULL OR status = %(s)s)"
        " ORDER BY created_at DESC, remedy_id DESC LIMIT 1000",
        {"v": vehicle, "s": status},
        REMEDY_KEYS,
        ("remedy_id", "vehicle_id", "fault", "kind", "status", "reason"),
        as_json,
    )


@bookings_app.command("list")
def list_bookings(
    centre: Annotated[str | None, typer.Option(help="Only this service centre's bookings.")] = None,
    status: Annotated[str | None, typer.Option(help="booked, completed, cancelled or no_show.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Bookings by start time."""
    _listing(
        "SELECT " + ", ".join(BOOKING_KEYS) + " FROM bookings"
        " WHERE (%(c)s::text IS NULL OR service_centre_id = %(c)s)"
        " AND (%(s)s::text IS NULL OR status = %(s)s) ORDER BY starts_at LIMIT 1000",
        {"c": centre, "s": status},
        BOOKING_KEYS,
        ("booking_id", "vehicle_id", "service_centre_id", "skill", "starts_at", "late", "status"),
        as_json,
    )


def _act(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from fleet.runtime import migrated_database

    with migrated_database(_settings()) as conn:
        try:
            return fn(conn, *args, **kwargs)
        except LookupError as exc:
            raise typer.BadParameter(str(exc), param_hint="BOOKING_ID") from None


@bookings_app.command("reschedule")
def reschedule(booking_id: int, by: ActorOpt) -> None:
    """Move a visit to the next free slot after it (the old booking is cancelled)."""
    from remedies import bookings

    new = _act(bookings.reschedule, booking_id, by)
    print(f"booking {new}" if new is not None else "no free slot: the booking is unchanged")


@bookings_app.command("cancel")
def cancel(
    booking_id: int,
    by: ActorOpt,
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    rebook: Annotated[bool, typer.Option(help="Book the next free slot at once.")] = False,
) -> None:
    """Cancel a visit; with --rebook, book another one at once."""
    from remedies import bookings

    new = _act(bookings.cancel, booking_id, by, reason, rebook=rebook)
    print(f"cancelled; new booking {new}" if new is not None else "cancelled")


@bookings_app.command("no-show")
def no_show(booking_id: int, by: ActorOpt) -> None:
    """Record that the vehicle did not come; a new visit is booked until too many are missed."""
    from remedies import bookings

    new = _act(bookings.no_show, booking_id, by)
    print(f"new booking {new}" if new is not None else "no new booking: the remedy failed, contact the owner")


@bookings_app.command("complete")
def complete(booking_id: int, by: ActorOpt) -> None:
    """Record that the visit was made: the remedy is done."""
    from remedies import bookings

    _act(bookings.complete, booking_id, by)
    print("done")


def _listing(
    sql: str, params: dict[str, Any], keys: tuple[str, ...], shown: tuple[str, ...], as_json: bool
) -> None:
    """Run a listing query; print its rows (named `keys`) as JSON, or the `shown` columns as a table."""
    from fleet.runtime import migrated_database

    with migrated_database(_settings()) as conn:
        rows = conn.execute(sql, params).fetchall()
    _show([dict(zip(keys, r, strict=True)) for r in rows], as_json, shown)


def _show(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table()
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(str(r[c]) for c in columns))
    Console().print(table)


campaigns_app = typer.Typer(
    help="OTA campaigns: list, show, approve, pause, resume, cancel.", no_args_is_help=True
)


def register_campaigns(app: typer.Typer) -> None:
    app.add_typer(campaigns_app, name="campaigns")


@campaigns_app.command("list")
def list_campaigns(as_json: JsonOpt = False) -> None:
    """Every campaign with its status, open wave and members by state."""
    _listing(
        "SELECT c.campaign_id, c.name, c.status, c.current_wave + 1, c.ecu, c.from_version, c.to_version,"
        " c.reason, (SELECT jsonb_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM"
        " campaign_vehicles v WHERE v.campaign_id = c.campaign_id GROUP BY state) s)"
        " FROM campaigns c ORDER BY c.campaign_id",
        {},
        CAMPAIGN_KEYS,
        ("campaign_id", "name", "status", "open_wave", "states", "reason"),
        as_json,
    )


def _campaign_act(event_name: str, campaign_id: int, by: str, reason: str) -> None:
    from fleet.runtime import migrated_database
    from ota.controller import act
    from ota.rollout import Event, TransitionError

    with migrated_database(_settings()) as conn:
        try:
            status = act(conn, campaign_id, Event(event_name), by, reason)
        except LookupError as exc:
            raise typer.BadParameter(str(exc), param_hint="CAMPAIGN_ID") from None
        except TransitionError as exc:
            raise typer.BadParameter(str(exc), param_hint="CAMPAIGN_ID") from None
    print(f"campaign {campaign_id}: {status.value}")


ReasonOpt = Annotated[str, typer.Option(help="Why (recorded).")]


@campaigns_app.command("approve")
def approve(campaign_id: int, by: ActorOpt, reason: ReasonOpt = "") -> None:
    """Approve a proposed campaign: the controller starts it at its next step."""
    _campaign_act("approve", campaign_id, by, reason)


@campaigns_app.command("pause")
def pause(campaign_id: int, by: ActorOpt, reason: ReasonOpt = "") -> None:
    """Pause a running campaign: no further offers until it is resumed."""
    _campaign_act("pause", campaign_id, by, reason)


@campaigns_app.command("resume")
def resume(campaign_id: int, by: ActorOpt, reason: ReasonOpt = "") -> None:
    """Resume a paused campaign; the failures so far are accepted (they stay recorded)."""
    _campaign_act("resume", campaign_id, by, reason)


@campaigns_app.command("cancel")
def cancel_campaign(campaign_id: int, by: ActorOpt, reason: ReasonOpt = "") -> None:
    """Cancel a campaign for good."""
    _campaign_act("cancel", campaign_id, by, reason)
