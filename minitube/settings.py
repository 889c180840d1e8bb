"""Settings: read once from the environment into one frozen object."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

# The development secret is public (it is in this file); `Settings.check`
# refuses to run with it outside development.
DEV_SECRET = "minitube-dev-secret-do-not-use-in-production-0000"

GiB = 1024**3


class SettingsError(ValueError):
    """A setting is missing or malformed."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = ""
    redis_url: str = ""
    host: str = "0.0.0.0"
    port: int = 8080
    env: str = "production"  # "production" or "development"
    secret_key: str = DEV_SECRET
    storage_dir: Path = Path("storage")
    # Where `minitube dev` keeps the embedded PostgreSQL and Redis data.
    dev_data_dir: Path = Path("var")

    max_upload_bytes: int = 2 * GiB
    max_title_chars: int = 200
    max_description_chars: int = 5000
    media_probe_timeout: float = 600.0

    token_ttl_seconds: int = 3600
    # Argon2id cost: OWASP's second recommended set (19 MiB, t=2, p=1).
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    login_failures_before_slowdown: int = 3
    login_failures_limit: int = 10
    login_failure_window_seconds: int = 900
    registrations_per_address: int = 20
    uploads_per_address: int = 30
    rate_window_seconds: int = 3600

    view_threshold_seconds: float = 30.0
    view_window_seconds: int = 24 * 3600
    views_per_address: int = 20

    heartbeat_seconds: float = 10.0
    # A dead process's viewers go after this plus one renewal period (a third
    # of it): 24 s at most, inside the contract's 30 s.
    presence_timeout_seconds: float = 18.0
    broadcast_interval_seconds: float = 0.25
    sockets_per_address: int = 64
    # Empty means "the server's own origin only".
    allowed_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    trust_proxy: bool = False

    @property
    def is_dev(self) -> bool:
        return self.env == "development"

    def check(self) -> None:
        """Refuse settings that must not run: e.g. the public dev secret in production."""
        if not self.database_url:
            raise SettingsError("DATABASE_URL is not set")
        if not self.redis_url:
            raise SettingsError("REDIS_URL is not set")
        if not self.is_dev and (self.secret_key == DEV_SECRET or len(self.secret_key) < 32):
            raise SettingsError(
                "MINITUBE_SECRET_KEY must be set to a random string of 32+ characters "
                "outside development (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if self.presence_timeout_seconds <= self.heartbeat_seconds:
            raise SettingsError("MINITUBE_PRESENCE_TIMEOUT_SECONDS must exceed MINITUBE_HEARTBEAT_SECONDS")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Build settings from DATABASE_URL, REDIS_URL, PORT and MINITUBE_* variables."""
        env = os.environ if environ is None else environ
        values: dict = {}
        plain = {"DATABASE_URL": "database_url", "REDIS_URL": "redis_url", "PORT": "port"}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, field in fields.items():
            var = next((k for k, v in plain.items() if v == name), f"MINITUBE_{name.upper()}")
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[name] = _parse(var, raw, field.default)
        values.update(overrides)
        return cls(**values)


def _parse(var: str, raw: str, default):
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a valid {type(default).__name__}") from None
