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


def create_token(
    conn: psycopg.Connection, name: str, role: Role | str, service_centre_id: str | None = None
) -> str:
    """Store a new token and return its plaintext, which is not kept anywhere. Commits, unless the
    caller has a transaction open (then it is the caller's to commit). Raises ValueError for an
    unknown role or a role/centre mismatch, psycopg.Error if the insert fails."""
    principal = Principal(name, Role(role), service_centre_id)
    token = secrets.token_urlsafe(32)
    with conn.transaction():
        repository.insert_token(
            conn, hash_token(token), principal.name, principal.role.value, principal.service_centre_id
        )
    return token


def revoke_token(conn: psycopg.Connection, name: str) -> int:
    """Revoke every active token called `name`; returns how many. Raises psycopg.Error."""
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
