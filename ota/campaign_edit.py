"""Reading a campaign's settings and an operator's change to them (the shell of
`ota.campaign_settings`, which decides what is valid and when).

A change is one transaction: the campaign row is locked (so a controller step or a second operator
waits), the change is checked against the row's present status, written, and recorded in
`campaign_history` with who made it and what changed. Raises LookupError for an unknown campaign,
`ota.campaign_settings.SettingsError` for a refused change, psycopg.Error.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ota.campaign_settings import CampaignSettings, apply_change, describe
from ota.rollout import Status

_COLUMNS = (
    "waves_pct, success_threshold, error_threshold, max_failures, soak_s, offer_timeout_s, urgency,"
    " forced_after, maintenance_window, consent_required"
)


def read_settings(
    conn: psycopg.Connection, campaign_id: int, *, lock: bool = False
) -> tuple[Status, CampaignSettings]:
    """The campaign's status and settings. Raises LookupError for an unknown campaign."""
    row = conn.execute(
        f"SELECT status, {_COLUMNS} FROM campaigns WHERE campaign_id = %s" + (" FOR UPDATE" if lock else ""),
        (campaign_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"no campaign {campaign_id}")
    status, waves, success, error, cap, soak, timeout, urgency, forced_after, window, consent = row
    settings = CampaignSettings(
        tuple(float(w) for w in waves), float(success), float(error), int(cap), float(soak),
        float(timeout), urgency, forced_after, window, bool(consent),
    )  # fmt: skip
    return Status(status), settings


def change_settings(
    conn: psycopg.Connection, campaign_id: int, change: dict[str, Any], actor: str, reason: str = ""
) -> CampaignSettings:
    """Apply `change` (CampaignSettings field names to values) and record it; returns the new
    settings. Raises LookupError, SettingsError (nothing written), psycopg.Error."""
    with conn.transaction():
        status, old = read_settings(conn, campaign_id, lock=True)
        new = apply_change(old, status, change)
        row = new.as_row()
        row["waves_pct"] = list(new.waves_pct)
        row["maintenance_window"] = None if new.maintenance_window is None else Jsonb(new.maintenance_window)
        assignments = ", ".join(f"{name} = %({name})s" for name in row)
        conn.execute(
            f"UPDATE campaigns SET {assignments}, updated_at = now() WHERE campaign_id = %(campaign_id)s",
            {**row, "campaign_id": campaign_id},
        )
        why = describe(old, new) + (f" ({reason})" if reason else "")
        conn.execute(
            "INSERT INTO campaign_history (campaign_id, status, reason, actor) VALUES (%s, %s, %s, %s)",
            (campaign_id, status.value, why, actor),
        )
    return new
