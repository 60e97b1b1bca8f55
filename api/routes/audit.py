"""The read audit log over HTTP (admins only): who read which vehicles' data, and when.

Owns: the route's parameters and shape. Leaves writing the log to `api.read_audit`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.auth import Principal, Role, require_role
from api.cursors import Cursor, Keyset, Part
from api.db import Conn
from api.params import Limit, Since
from api.responses import FORBIDDEN, INVALID_CURSOR
from api.schemas import NEXT_CURSOR
from contract.batch import VEHICLE_ID_PATTERN

router = APIRouter(prefix="/audit", tags=["audit"], responses={**FORBIDDEN, **INVALID_CURSOR})
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]
READS = Keyset("audit-reads", (Part.TIME, Part.ID))


class ReadOut(BaseModel):
    audit_id: int
    at: dt.datetime = Field(description="When the API answered the request (its wall clock)")
    principal: str = Field(description="Who, as `role:name`")
    path: str = Field(description="The request's path")
    vehicle_ids: list[str] = Field(description="Every vehicle whose data the answer held")


class ReadList(BaseModel):
    items: list[ReadOut] = Field(description="Newest first, then audit_id descending")
    limit: int
    next_cursor: str | None = Field(description=NEXT_CURSOR)


@router.get("/reads")
def list_reads(
    principal: Admin,
    conn: Conn,
    vehicle_id: Annotated[
        str | None, Query(pattern=VEHICLE_ID_PATTERN.pattern, description="Only reads of this vehicle")
    ] = None,
    reader: Annotated[
        str | None, Query(min_length=1, max_length=300, description="Only this principal (`role:name`)")
    ] = None,
    since: Since = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ReadList:
    """Who read which vehicles' data, newest first (written within about a second of the read)."""
    filters = {"vehicle_id": vehicle_id, "reader": reader, "since": since}
    after = READS.after(cursor, filters)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT audit_id, at, principal, path, vehicle_ids FROM api_read_audit"
            " WHERE (%(v)s::text IS NULL OR vehicle_ids @> ARRAY[%(v)s::text])"
            " AND (%(p)s::text IS NULL OR principal = %(p)s) AND (%(s)s::timestamptz IS NULL OR at >= %(s)s)"
            " AND (%(a_at)s::timestamptz IS NULL OR (at, audit_id) < (%(a_at)s, %(a_id)s))"
            " ORDER BY at DESC, audit_id DESC LIMIT %(n)s",
            {
                "v": vehicle_id, "p": reader, "s": since, "n": limit + 1,
                "a_at": after[0] if after else None, "a_id": after[1] if after else None,
            },
        ).fetchall()  # fmt: skip
    items, next_cursor = READS.page(rows, limit, lambda r: (r["at"], r["audit_id"]), filters)
    return ReadList(items=[ReadOut.model_validate(r) for r in items], limit=limit, next_cursor=next_cursor)
