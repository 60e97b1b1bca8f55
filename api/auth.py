"""Who is calling and what they may do: bearer tokens -> principal -> role.

Owns: token minting and hashing (only SHA-256 digests are stored; the plaintext is shown once and
never logged) and the dependency chain routes declare. Leaves the token table's SQL to
`api.repository` and what each role may see to the scoping there.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import psycopg
import psycopg.errors
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import repository
from api.db import Conn


class Role(enum.StrEnum):
    ADMIN = "admin"
    SERVICE_CENTRE = "service_centre"
    FLEET_OPERATOR = "fleet_operator"
    ENGINEER = "engineer"  # fleet-wide reads of vehicles and alarms; no owner data, coarse positions


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. A service centre always has a centre id and a fleet operator one
    or more fleet ids; an admin has neither."""

    name: str
    role: Role
    service_centre_id: str | None = None
    fleet_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.role is Role.SERVICE_CENTRE) != (self.service_centre_id is not None):
            raise ValueError("a service_centre principal needs a service_centre_id; no other role has one")
        if (self.role is Role.FLEET_OPERATOR) != bool(self.fleet_ids):
            raise ValueError("a fleet_operator principal needs fleet ids; no other role has them")

    @property
    def visible_centre_id(self) -> str | None:
        """The centre whose vehicles this principal may see; None means all of them (admin,
        engineer; a fleet operator has no vehicle routes)."""
        return None if self.role is Role.ADMIN else self.service_centre_id

    @property
    def coarse_positions(self) -> bool:
        """Whether positions are coarsened for this principal (`api.privacy.positions`): it needs no
        exact place."""
        return self.role is Role.ENGINEER

    @property
    def visible_fleet_ids(self) -> list[str] | None:
        """The fleets this principal may query; None means all of them (admin)."""
        return None if self.role is Role.ADMIN else list(self.fleet_ids)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenNameTaken(ValueError):
    """An active token already has the name asked for (names are unique among active tokens)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an active token is already called {name!r}")
        self.name = name


class UnknownFleetId(ValueError):
    """A fleet operator's token was asked for a fleet that is not in the registry."""

    def __init__(self, fleet_id: str) -> None:
        super().__init__(f"no fleet {fleet_id!r} in the registry (add it: fleet registry import)")
        self.fleet_id = fleet_id


class UnknownServiceCentre(ValueError):
    """A service-centre token was asked for a centre that is not in the registry: it would see no
    vehicle, and a typo would go unnoticed."""

    def __init__(self, centre_id: str) -> None:
        super().__init__(f"no service centre {centre_id!r} in the registry (add it: fleet registry import)")
        self.centre_id = centre_id


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token's plaintext (shown once, stored nowhere) and how many tokens it replaced."""

    token: str
    replaced: int


MAX_NAME_LENGTH = 200


def issue_token(
    conn: psycopg.Connection,
    name: str,
    role: Role | str,
    service_centre_id: str | None = None,
    *,
    replace: bool = False,
    fleet_ids: Sequence[str] = (),
) -> IssuedToken:
    """Store a new token called `name`. With `replace`, the active token of that name (if any) is
    revoked in the same transaction, so the name never points at two tokens or at none. Commits,
    unless the caller has a transaction open (then it is the caller's to commit).

    Raises ValueError for an empty or over-long name, an unknown role or a role/centre mismatch
    (before any SQL); UnknownServiceCentre or UnknownFleetId for a centre or fleet the registry
    does not hold (a fleet operator's `fleet_ids` name the fleets it may query); TokenNameTaken
    if an active token has the name and `replace` is false; psycopg.Error if the database fails."""
    if not name or name != name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a token name is 1-{MAX_NAME_LENGTH} characters without leading or trailing spaces")
    principal = Principal(name, Role(role), service_centre_id, tuple(dict.fromkeys(fleet_ids)))
    token = secrets.token_urlsafe(32)
    centre = principal.service_centre_id
    if centre is not None and not repository.service_centre_exists(conn, centre):
        raise UnknownServiceCentre(centre)
    for fleet_id in principal.fleet_ids:
        if not repository.fleet_exists(conn, fleet_id):
            raise UnknownFleetId(fleet_id)
    try:
        with conn.transaction():
            replaced = repository.revoke_tokens(conn, name) if replace else 0
            repository.insert_token(
                conn,
                hash_token(token),
                principal.name,
                principal.role.value,
                principal.service_centre_id,
                list(principal.fleet_ids) or None,
            )
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == repository.ACTIVE_NAME_INDEX:
            raise TokenNameTaken(name) from None
        raise
    return IssuedToken(token, replaced)


def create_token(
    conn: psycopg.Connection,
    name: str,
    role: Role | str,
    service_centre_id: str | None = None,
    *,
    fleet_ids: Sequence[str] = (),
) -> str:
    """Store a new token and return its plaintext (see `issue_token`; never replaces one)."""
    return issue_token(conn, name, role, service_centre_id, fleet_ids=fleet_ids).token


def revoke_token(conn: psycopg.Connection, name: str) -> int:
    """Revoke the active token called `name`; returns how many were revoked (0 or 1).
    Raises psycopg.Error."""
    with conn.transaction():
        return repository.revoke_tokens(conn, name)


_bearer = HTTPBearer(auto_error=False, description="Opaque API token issued by an operator")


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The presented token. Raises 401 before any database work when there is none. (Checks that
    never block are async: a sync dependency costs a hop to the thread pool per request.)"""
    if credentials is None or not credentials.credentials:
        raise _unauthorised("missing bearer token")
    return credentials.credentials


def current_principal(token: Annotated[str, Depends(bearer_token)], conn: Conn) -> Principal:
    """The caller behind the token. Raises 401 for an unknown or revoked token."""
    record = repository.find_active_token(conn, hash_token(token))
    if record is None:
        raise _unauthorised("invalid or revoked token")
    return Principal(record.name, Role(record.role), record.service_centre_id, tuple(record.fleet_ids or ()))


@dataclass(frozen=True, slots=True)
class RoleGuard:
    """A dependency admitting only principals whose role is in `roles`; others get 403."""

    roles: frozenset[Role]

    async def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in self.roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this role may not use this route")
        return principal


def require_role(*roles: Role) -> RoleGuard:
    return RoleGuard(frozenset(roles))


AnyRole = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.SERVICE_CENTRE, Role.ENGINEER))]
"""The vehicle routes (engineers fleet-wide, positions coarsened): a fleet operator has none (403)."""
FleetRole = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.FLEET_OPERATOR))]
"""The fleet-query routes: admins (every fleet) and fleet operators (their fleets); 403 otherwise."""
