"""The people who use the hub: local accounts (argon2 password hashes), sign-in with throttling
and lock-out per account and per client address, and API tokens (only a hash kept at rest).

Every change and every sign-in attempt is audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.audit import AuditEvent, append
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.access import ApiTokenRow, LoginAttemptRow, UserRow, UserSessionRow

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")
TOKEN_PREFIX = "hubt_"
MIN_PASSWORD_LENGTH = 10


class UserError(ValueError):
    """A user-management request that cannot be done (duplicate name, weak password, unknown user)."""


class SignInRefused(Exception):
    """Sign-in failed; `reason` is for the audit, the message shown to the person is always generic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Throttle:
    """Failures within `window` lock an account (`account_failures`) or refuse an address
    (`ip_failures`) for `lockout`."""

    account_failures: int = 5
    ip_failures: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    roles: list[str]
    worker_name: str | None = None
    teams: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.display_name or self.username


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.display_name or "", list(row.roles or []), row.worker_name,
                list(row.teams or []))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _get(session: Session, username: str) -> UserRow | None:
    return session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()


def add_user(store: Store, username: str, password: str, roles: list[str], *, actor: str = "system",
             display_name: str = "", worker_name: str | None = None, teams: list[str] | None = None) -> User:
    username = username.strip()
    if not username:
        raise UserError("a user needs a username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    with store.transaction() as s:
        if _get(s, username) is not None:
            raise UserError(f"user {username!r} exists already")
        row = UserRow(username=username, display_name=display_name, password_hash=_HASHER.hash(password),
                      roles=sorted(set(roles)), worker_name=worker_name, teams=sorted(set(teams or [])), active=True)
        s.add(row)
        s.flush()
        append(s, AuditEvent(actor, "user_add", target=username,
                             detail={"roles": row.roles, "worker_name": worker_name, "teams": row.teams}))
        return _user(row)


def remove_user(store: Store, username: str, *, actor: str = "system") -> None:
    with store.transaction() as s:
        row = _get(s, username)
        if row is None:
            raise UserError(f"no user {username!r}")
        s.execute(delete(ApiTokenRow).where(ApiTokenRow.user_id == row.id))
        s.delete(row)
        append(s, AuditEvent(actor, "user_remove", target=username))


def set_roles(store: Store, username: str, roles: list[str], *, actor: str = "system",
              worker_name: str | None = None, teams: list[str] | None = None) -> User:
    """Replace the user's roles (and, when given, worker name and teams)."""
    with store.transaction() as s:
        row = _get(s, username)
        if row is None:
            raise UserError(f"no user {username!r}")
        before = list(row.roles or [])
        row.roles = sorted(set(roles))
        if worker_name is not None:
            row.worker_name = worker_name or None
        if teams is not None:
            row.teams = sorted(set(teams))
        append(s, AuditEvent(actor, "user_roles", target=username,
                             detail={"before": before, "after": row.roles, "worker_name": row.worker_name,
                                     "teams": row.teams}))
        return _user(row)


def list_users(store: Store) -> list[User]:
    with store.transaction() as s:
        return [_user(r) for r in s.execute(select(UserRow).order_by(UserRow.username)).scalars()]


def get_user(store: Store, user_id: int) -> User | None:
    with store.transaction() as s:
        row = s.get(UserRow, user_id)
        return _user(row) if row is not None and row.active else None


def authenticate(store: Store, username: str, password: str, *, client: str,
                 throttle: Throttle = Throttle(), now: dt.datetime | None = None) -> User:
    """The user, if the password is right and neither the account nor the address is locked out.
    Records the attempt and audits it; raises SignInRefused otherwise."""
    now = now or utcnow()
    since = now - throttle.window
    with store.transaction() as s:
        ip_failures = s.execute(select(func.count()).select_from(LoginAttemptRow).where(
            LoginAttemptRow.ip == client, LoginAttemptRow.succeeded.is_(False),
            LoginAttemptRow.at >= since)).scalar_one()
        row = _get(s, username)
        reason = None
        if ip_failures >= throttle.ip_failures:
            reason = "address throttled"
        elif row is not None and _aware(row.locked_until) and _aware(row.locked_until) > now:
            reason = "account locked"
        password_ok = _verify(row.password_hash if row is not None else _DUMMY_HASH, password)
        if reason is None and (row is None or not row.active or not password_ok):
            reason = "unknown user" if row is None else ("inactive" if not row.active else "wrong password")
        s.add(LoginAttemptRow(username=username[:120], ip=client[:64], succeeded=reason is None, at=now))
        if reason is None:
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
            append(s, AuditEvent(username, "sign_in", client=client), at=now)
            return _user(row)
        if row is not None and reason == "wrong password":
            failures = s.execute(select(func.count()).select_from(LoginAttemptRow).where(
                LoginAttemptRow.username == username, LoginAttemptRow.succeeded.is_(False),
                LoginAttemptRow.at >= since)).scalar_one()
            if failures >= throttle.account_failures:
                row.locked_until = now + throttle.lockout
                reason = "wrong password; account now locked"
        append(s, AuditEvent(username[:120], "sign_in_failed", outcome="refused", client=client,
                             detail={"reason": reason}), at=now)
    raise SignInRefused(reason)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def record_sign_out(store: Store, username: str, client: str, sid: str | None = None) -> None:
    """Audit the sign-out and end the session, so its cookie is refused from now on."""
    with store.transaction() as s:
        if sid:
            _end(s, sid, "signed_out", utcnow())
        append(s, AuditEvent(username, "sign_out", client=client))


# last_seen is written at most this often, not on every request; the idle time-out is this coarse.
SESSION_TOUCH_EVERY = dt.timedelta(seconds=60)


def open_session(store: Store, user: User, client: str, *, now: dt.datetime | None = None) -> str:
    """A new browser session for `user`: returns its id for the cookie (only its hash is kept)."""
    now = now or utcnow()
    sid = secrets.token_urlsafe(32)
    with store.transaction() as s:
        s.add(UserSessionRow(sid_hash=_token_hash(sid), user_id=user.id, client=client[:64], signed_in_at=now,
                             last_seen_at=now))
    return sid


def session_user(store: Store, sid: str, *, idle: dt.timedelta, lifetime: dt.timedelta,
                 now: dt.datetime | None = None) -> User | None:
    """The active user of a live session, or None when the session is unknown, signed out, idle
    longer than `idle` or older than `lifetime` (such a session is ended for good)."""
    now = now or utcnow()
    with store.transaction() as s:
        row = s.execute(select(UserSessionRow).where(UserSessionRow.sid_hash == _token_hash(sid))).scalar_one_or_none()
        if row is None or row.ended_at is not None:
            return None
        reason = "idle" if now - _aware(row.last_seen_at) > idle else \
            "expired" if now - _aware(row.signed_in_at) > lifetime else None
        user = s.get(UserRow, row.user_id)
        if user is None or not user.active:
            reason = reason or "user_gone"
        if reason:
            row.ended_at, row.end_reason = now, reason
            return None
        if now - _aware(row.last_seen_at) >= SESSION_TOUCH_EVERY:
            row.last_seen_at = now
        return _user(user)


def _end(s: Session, sid: str, reason: str, now: dt.datetime) -> None:
    row = s.execute(select(UserSessionRow).where(UserSessionRow.sid_hash == _token_hash(sid))).scalar_one_or_none()
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = now, reason


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TOKEN_DAYS = 365


def create_token(store: Store, username: str, *, name: str = "", days: int | None = 90,
                 actor: str = "system", client: str | None = None) -> str:
    """A new API token for the user; the plain token is returned once and never stored."""
    name = name.strip()
    if len(name) > 120:
        raise UserError("a token name can have at most 120 characters")
    if days is not None and not 0 < days <= MAX_TOKEN_DAYS:
        raise UserError(f"a token lasts between 1 and {MAX_TOKEN_DAYS} days")
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secret}"
    with store.transaction() as s:
        row = _get(s, username)
        if row is None:
            raise UserError(f"no user {username!r}")
        expires = utcnow() + dt.timedelta(days=days) if days else None
        s.add(ApiTokenRow(user_id=row.id, name=name, prefix=prefix, token_hash=_token_hash(token),
                          expires_at=expires))
        append(s, AuditEvent(actor, "token_create", target=username, client=client,
                             detail={"name": name, "prefix": prefix, "expires_at": expires}))
    return token


def revoke_token(store: Store, prefix: str, *, actor: str = "system", owner: str | None = None,
                 client: str | None = None) -> None:
    """Revoke the token(s) with this prefix; with `owner`, only that user's (so a user revoking
    their own token cannot touch anyone else's by guessing a prefix)."""
    with store.transaction() as s:
        query = select(ApiTokenRow).where(ApiTokenRow.prefix == prefix)
        if owner is not None:
            query = query.join(UserRow, UserRow.id == ApiTokenRow.user_id).where(UserRow.username == owner)
        rows = s.execute(query).scalars().all()
        if not rows:
            raise UserError(f"no token {prefix!r}")
        owners = sorted({u for u in s.execute(select(UserRow.username).where(
            UserRow.id.in_([r.user_id for r in rows]))).scalars()})
        for row in rows:
            row.revoked = True
        append(s, AuditEvent(actor, "token_revoke", target=prefix, client=client, detail={"owners": owners}))


def user_for_token(store: Store, token: str, *, now: dt.datetime | None = None) -> User | None:
    """The active user a bearer token belongs to, or None (unknown, revoked or expired)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = now or utcnow()
    with store.transaction() as s:
        row = s.execute(select(ApiTokenRow).where(ApiTokenRow.token_hash == _token_hash(token))).scalar_one_or_none()
        if row is None or row.revoked or (row.expires_at and _aware(row.expires_at) <= now):
            return None
        user = s.get(UserRow, row.user_id)
        if user is None or not user.active:
            return None
        row.last_used_at = now
        return _user(user)


def list_tokens(store: Store, username: str, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The user's tokens, newest first (never the token itself: only its prefix)."""
    with store.transaction() as s:
        row = _get(s, username)
        if row is None:
            raise UserError(f"no user {username!r}")
        tokens = s.execute(select(ApiTokenRow).where(ApiTokenRow.user_id == row.id)
                           .order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id.desc())).scalars().all()
        return [_token(t, username, now or utcnow()) for t in tokens]


def list_all_tokens(store: Store, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every user's tokens, by user then newest first: for an integration admin."""
    with store.transaction() as s:
        rows = s.execute(select(ApiTokenRow, UserRow.username).join(UserRow, UserRow.id == ApiTokenRow.user_id)
                         .order_by(UserRow.username, ApiTokenRow.created_at.desc(), ApiTokenRow.id.desc())).all()
        return [_token(t, username, now or utcnow()) for t, username in rows]


def _token(t: ApiTokenRow, username: str, now: dt.datetime) -> dict[str, Any]:
    expires = _aware(t.expires_at)
    status = "revoked" if t.revoked else "expired" if expires and expires <= now else "active"
    return {"prefix": t.prefix, "name": t.name, "username": username, "created_at": _aware(t.created_at),
            "expires_at": expires, "revoked": t.revoked, "last_used_at": _aware(t.last_used_at), "status": status}
