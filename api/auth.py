"""Who is calling and what they may do: bearer tokens -> principal -> role.

Owns: token minting and hashing (only SHA-256 digests are stored; the plaintext is shown once and
never logged) and the dependency chain routes declare. Leaves the token table's SQL to
`api.repository` and what each role may see to the scoping there.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
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


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. A service centre always has a centre id; an admin never does."""

    name: str
    role: Role
    service_centre_id: str | None = None

    def __post_init__(self) -> None:
        if (self.role is Role.SERVICE_CENTRE) != (self.service_centre_id is not None):
            raise ValueError("a service_centre principal needs a service_centre_id; an admin has none")

    @property
    def visible_centre_id(self) -> str | None:
        """The centre whose vehicles this principal may see; None means all of them."""
        return None if self.role is Role.ADMIN else self.service_centre_id


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenNameTaken(ValueError):
    """An active token already has the name asked for (names are unique among active tokens)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an active token is already called {name!r}")
        self.name = name


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
) -> IssuedToken:
    """Store a new token called `name`. With `replace`, the active token of that name (if any) is
    revoked in the same transaction, so the name never points at two tokens or at none. Commits,
    unless the caller has a transaction open (then it is the caller's to commit).

    Raises ValueError for an empty or over-long name, an unknown role or a role/centre mismatch
    (before any SQL); UnknownServiceCentre for a centre the registry does not hold; TokenNameTaken
    if an active token has the name and `replace` is false; psycopg.Error if the database fails."""
    if not name or name != name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"a token name is 1-{MAX_NAME_LENGTH} characters without leading or trailing spaces"
        )
    principal = Principal(name, Role(role), service_centre_id)
    token = secrets.token_urlsafe(32)
    centre = principal.service_centre_id
    if centre is not None and not repository.service_centre_exists(conn, centre):
        raise UnknownServiceCentre(centre)
    try:
        with conn.transaction():
            replaced = repository.revoke_tokens(conn, name) if replace else 0
            repository.insert_token(
                conn, hash_token(token), principal.name, principal.role.value, principal.service_centre_id
            )
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == repository.ACTIVE_NAME_INDEX:
            raise TokenNameTaken(name) from None
        raise
    return IssuedToken(token, replaced)


def create_token(
    conn: psycopg.Connection, name: str, role: Role | str, service_centre_id: str | None = None
) -> str:
    """Store a new token and return its plaintext (see `issue_token`; never replaces one)."""
    return issue_token(conn, name, role, service_centre_id).token


def revoke_token(conn: psycopg.Connection, name: str) -> int:
    """Revoke the active token called `name`; returns how many were revoked (0 or 1).
    Raises psycopg.Error."""
    with conn.transaction():
        return repository.revoke_tokens(conn, name)


_bearer = HTTPBearer(auto_error=False, description="Opaque API token issued by an operator")


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The presented token. Raises 401 before any database work when there is none."""
    if credentials is None or not credentials.credentials:
        raise _unauthorised("missing bearer token")
    return credentials.credentials


def current_principal(token: Annotated[str, Depends(bearer_token)], conn: Conn) -> Principal:
    """The caller behind the token. Raises 401 for an unknown or revoked token."""
    record = repository.find_active_token(conn, hash_token(token))
    if record is None:
        raise _unauthorised("invalid or revoked token")
    return Principal(record.name, Role(record.role), record.service_centre_id)


@dataclass(frozen=True, slots=True)
class RoleGuard:
    """A dependency admitting only principals whose role is in `roles`; others get 403."""

    roles: frozenset[Role]

    def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in self.roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this role may not use this route")
        return principal


def require_role(*roles: Role) -> RoleGuard:
    return RoleGuard(frozenset(roles))


AnyRole = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.SERVICE_CENTRE))]
