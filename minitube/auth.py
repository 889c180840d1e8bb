"""Accounts: registration, login, JWT access tokens and the current user."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import AsyncIterator

import argon2
import jwt
from aiohttp import web

from . import db
from .errors import EmailTaken, Invalid, RateLimited, Unauthorized
from .httputil import client_address, json_response, read_json_object, rfc3339
from .keys import hasher_key, limiter_key, settings_key, user_key
from .settings import Settings

JWT_ALGORITHM = "HS256"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
SUBJECT_RE = re.compile(r"^[1-9][0-9]{0,17}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_EMAIL = 254
MAX_DISPLAY_NAME = 50

INSERT_USER = """
    INSERT INTO users (email, password_hash, display_name)
    VALUES (%(email)s, %(password_hash)s, %(display_name)s)
    ON CONFLICT (email) DO NOTHING
    RETURNING id, email, display_name, token_version, created_at
"""
SELECT_USER_BY_EMAIL = """
    SELECT id, email, display_name, token_version, created_at, password_hash
    FROM users WHERE email = %(email)s
"""
SELECT_USER_BY_ID = """
    SELECT id, email, display_name, token_version, created_at
    FROM users WHERE id = %(id)s
"""
UPDATE_PASSWORD_HASH = "UPDATE users SET password_hash = %(password_hash)s WHERE id = %(id)s"
BUMP_TOKEN_VERSION = "UPDATE users SET token_version = token_version + 1 WHERE id = %(id)s"


@dataclasses.dataclass(frozen=True)
class AuthUser:
    id: int
    email: str
    display_name: str
    token_version: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict) -> "AuthUser":
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "created_at": rfc3339(self.created_at),
        }


class PasswordHasher:
    """Argon2id on one dedicated thread. Hashing is CPU- and memory-heavy on
    purpose; with a single worker, a burst of logins queues up instead of
    taking both cores from the event loop (argon2-cffi releases the GIL)."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=argon2.Type.ID,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
        # Verified against for unknown e-mails, so that "no such user" costs
        # as much time as "wrong password".
        self._dummy_hash = self._hasher.hash("minitube-timing-equaliser")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._verify, password_hash or self._dummy_hash, password, password_hash is not None
        )

    def _verify(self, password_hash: str, password: str, real: bool) -> bool:
        try:
            return self._hasher.verify(password_hash, password) and real
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def hasher_ctx(app: web.Application) -> AsyncIterator[None]:
    hasher = PasswordHasher(app[settings_key])
    app[hasher_key] = hasher
    yield
    hasher.close()


# --- tokens -----------------------------------------------------------------


def issue_token(settings: Settings, user: AuthUser) -> str:
    now = int(time.time())
    claims = {"sub": str(user.id), "iat": now, "exp": now + settings.token_ttl_seconds, "ver": user.token_version}
    return jwt.encode(claims, settings.secret_key, algorithm=JWT_ALGORITHM)


def decode_token(settings: Settings, token: str) -> tuple[int, int]:
    """(user id, token version) from a valid token; Unauthorized otherwise."""
    try:
        # The algorithm list is pinned: a token cannot choose "none" or RS/HS confusion.
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "iat", "exp"]},
        )
        subject, version = claims["sub"], claims.get("ver", 0)
        if not (isinstance(subject, str) and SUBJECT_RE.match(subject)) or type(version) is not int:
            raise jwt.InvalidTokenError("malformed claims")
        return int(subject), version
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The access token has expired.", code="token_expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("The access token is invalid.", code="invalid_token") from None


async def user_from_token(app: web.Application, token: str) -> AuthUser:
    user_id, version = decode_token(app[settings_key], token)
    async with db.cursor(app) as cur:
        row = await db.fetch_one(cur, SELECT_USER_BY_ID, {"id": user_id})
    # A deleted user, or tokens revoked by bumping the version, are both 401.
    if row is None or row["token_version"] != version:
        raise Unauthorized("The access token is no longer valid.", code="invalid_token")
    return AuthUser.from_row(row)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="invalid_token")
    return token.strip()


async def optional_user(request: web.Request) -> AuthUser | None:
    """The user a valid bearer token names, or None when no token is sent.
    A token that is sent but invalid is still a 401: silently treating it as
    anonymous would hide a client bug."""
    if user_key in request:
        return request[user_key]
    token = bearer_token(request)
    user = await user_from_token(request.app, token) if token else None
    request[user_key] = user
    return user


async def required_user(request: web.Request) -> AuthUser:
    user = await optional_user(request)
    if user is None:
        raise Unauthorized()
    return user


# --- validation -------------------------------------------------------------


def normalize_email(value: object) -> str:
    """Trimmed, NFKC and lower-case: `A@X.io` and `a@x.io`, a composed and a
    decomposed `á`, and full-width `ａ` and `a` are one account."""
    return unicodedata.normalize("NFKC", value.strip()).lower() if isinstance(value, str) else ""


def _has_invisible(text: str) -> bool:
    """Control, format (zero-width, bidi overrides), surrogate or unassigned characters."""
    return any(unicodedata.category(ch)[0] == "C" for ch in text)


def validate_registration(body: dict) -> tuple[str, str, str]:
    errors: dict[str, str] = {}
    email = normalize_email(body.get("email"))
    if not EMAIL_RE.match(email) or len(email) > MAX_EMAIL or _has_invisible(email):
        errors["email"] = "must be a valid e-mail address"
    password = body.get("password")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        errors["password"] = f"must be at least {MIN_PASSWORD} characters"
    elif len(password) > MAX_PASSWORD:
        errors["password"] = f"must be at most {MAX_PASSWORD} characters"
    display_name = body.get("display_name")
    if display_name is None or (isinstance(display_name, str) and not display_name.strip()):
        display_name = email.split("@", 1)[0][:MAX_DISPLAY_NAME]
    if not isinstance(display_name, str):
        errors["display_name"] = "must be a string"
    else:
        display_name = clean_text(display_name)
        if not 1 <= len(display_name) <= MAX_DISPLAY_NAME:
            errors["display_name"] = f"must be 1 to {MAX_DISPLAY_NAME} characters"
    if errors:
        raise Invalid(errors)
    return email, password, display_name


def clean_text(value: str, *, multiline: bool = False) -> str:
    """Trimmed text without control characters (newlines kept when multiline)."""
    keep = "\n\t" if multiline else ""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n")
    value = "".join(ch for ch in value if ch in keep or unicodedata.category(ch)[0] != "C")
    return value.strip()


# --- handlers ---------------------------------------------------------------


async def register(request: web.Request) -> web.Response:
    app = request.app
    settings = app[settings_key]
    body = await read_json_object(request)
    email, password, display_name = validate_registration(body)
    await app[limiter_key].limit(
        f"rl:register:{client_address(request)}",
        allowed=settings.registrations_per_address,
        window=settings.rate_window_seconds,
        what="registrations from this address",
    )
    password_hash = await app[hasher_key].hash(password)
    async with db.cursor(app) as cur:
        row = await db.fetch_one(
            cur, INSERT_USER, {"email": email, "password_hash": password_hash, "display_name": display_name}
        )
    if row is None:
        raise EmailTaken()
    user = AuthUser.from_row(row)
    return json_response({"user": user.to_json()}, status=201)


async def login(request: web.Request) -> web.Response:
    app = request.app
    settings = app[settings_key]
    body = await read_json_object(request)
    email = normalize_email(body.get("email"))
    password = body.get("password")
    errors = {}
    if not email:
        errors["email"] = "is required"
    elif len(email) > MAX_EMAIL:
        errors["email"] = f"must be at most {MAX_EMAIL} characters"
    if not isinstance(password, str) or not password:
        errors["password"] = "is required"
    if errors:
        raise Invalid(errors)

    # Each attempt is counted before the password is checked, atomically, so
    # guesses sent in parallel cannot all slip in under the limit; a success
    # gives its attempt back.
    limiter = app[limiter_key]
    # Hashed: the key's size does not depend on what the client sent.
    email_digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    keys = (f"rl:login:email:{email_digest}", f"rl:login:addr:{client_address(request)}")
    window = settings.login_failure_window_seconds
    attempts = await limiter.hit_all(list(keys), window)
    over = [ttl for count, ttl in attempts if count > settings.login_failures_limit]
    if over:
        raise RateLimited(max(over), f"Too many failed logins; try again in {max(over)} seconds.")
    # Past a few failures each further attempt costs the guesser time.
    excess = max(count for count, _ in attempts) - 1 - settings.login_failures_before_slowdown
    if excess > 0:
        await asyncio.sleep(min(0.25 * excess, 2.0))

    async with db.cursor(app) as cur:
        row = await db.fetch_one(cur, SELECT_USER_BY_EMAIL, {"email": email})
    hasher = app[hasher_key]
    if not await hasher.verify(row["password_hash"] if row else None, password):
        raise Unauthorized("E-mail or password is wrong.", code="invalid_credentials")

    await limiter.forget(keys[0])
    await limiter.give_back(keys[1])
    if hasher.needs_rehash(row["password_hash"]):
        async with db.cursor(app) as cur:
            await cur.execute(UPDATE_PASSWORD_HASH, {"id": row["id"], "password_hash": await hasher.hash(password)})
    user = AuthUser.from_row(row)
    return json_response(
        {
            "access_token": issue_token(settings, user),
            "token_type": "bearer",
            "expires_in": settings.token_ttl_seconds,
            "user": user.to_json(),
        }
    )


async def me(request: web.Request) -> web.Response:
    user = await required_user(request)
    return json_response({"user": user.to_json()})


async def logout_all(request: web.Request) -> web.Response:
    """Revoke every token issued to this user so far."""
    user = await required_user(request)
    async with db.cursor(request.app) as cur:
        await cur.execute(BUMP_TOKEN_VERSION, {"id": user.id})
    return web.Response(status=204)
