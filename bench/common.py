"""What both benchmarks share: real PostgreSQL + Redis + one minitube server
process in a temporary folder, process memory, and a few API calls."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from minitube.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from minitube.migrate import apply_migrations

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
MiB = 1024 * 1024


def fail(message: str, code: int = 2) -> None:
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(code)


def require_tools(tools: dict[str, str]) -> dict[str, str]:
    """{name: default path} -> {name: found path}; exits non-zero with the
    install command when one is missing."""
    found, missing = {}, []
    for name, default in tools.items():
        path = default if os.access(default, os.X_OK) else shutil.which(name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        packages = " ".join({"nginx": "nginx-light"}.get(name, name) for name in missing)
        fail(f"missing {', '.join(missing)}; install with: apt-get update && apt-get install -y {packages}")
    return found


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


class RssSampler:
    """Samples a process's RSS (and the summed RSS of its children) every
    `interval` seconds in a thread, so the event loop's load cannot delay it."""

    def __init__(self, pid: int, interval: float = 0.05, max_seconds: float = 900.0) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.max_seconds = max_seconds
        self.samples: list[tuple[float, int]] = []
        self.child_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.monotonic(), self.process.memory_info().rss))
                children = 0
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        children += child.memory_info().rss
                self.child_peak = max(self.child_peak, children)
            self._stop.wait(self.interval)

    @property
    def peak(self) -> int:
        return max(value for _, value in self.samples)


class Server:
    """One `python -m minitube serve` process."""

    def __init__(
        self, env: dict[str, str], log_path: Path, nofile: int | None = None, python_args: tuple[str, ...] = ()
    ) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")

        def preexec() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        self.proc = subprocess.Popen(
            [sys.executable, *python_args, "-m", "minitube", "serve"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"the server was not ready within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class Stack:
    """A temporary folder holding embedded PostgreSQL, Redis and the server's storage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.root: Path | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.servers: list[Server] = []
        self.database_url = self.redis_url = ""

    def __enter__(self) -> "Stack":
        self.root = Path(tempfile.mkdtemp(prefix=f"minitube-bench-{self.name}-"))
        try:
            self.postgres = EmbeddedPostgres(self.root / "postgres", database="minitube_bench")
            self.database_url = self.postgres.start()
            self.redis = EmbeddedRedis(self.root / "redis", persist=False)
            self.redis_url = self.redis.start()
            apply_migrations(self.database_url)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def storage_dir(self) -> Path:
        assert self.root is not None
        return self.root / "storage"

    def start_server(self, nofile: int | None = None, python_args: tuple[str, ...] = (), **settings: str) -> Server:
        """Start a server with MINITUBE_<KEY>=value for each keyword. Other
        MINITUBE_* variables of the caller's environment pass through.
        `python_args` go before `-m minitube` (e.g. `-m cProfile -o FILE`)."""
        assert self.root is not None
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            PORT=str(free_port()),
            MINITUBE_HOST="127.0.0.1",
            MINITUBE_ENV="production",
            MINITUBE_SECRET_KEY=secrets.token_urlsafe(48),
            MINITUBE_STORAGE_DIR=str(self.storage_dir),
        )
        env.update({f"MINITUBE_{key.upper()}": str(value) for key, value in settings.items()})
        server = Server(env, self.root / f"server-{len(self.servers)}.log", nofile=nofile, python_args=python_args)
        self.servers.append(server)
        server.wait_ready()
        return server

    def __exit__(self, *exc) -> None:
        for server in reversed(self.servers):
            with contextlib.suppress(Exception):
                server.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.stop()
        if self.root is not None and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


# --- the API ------------------------------------------------------------------


async def register_and_login(session, base: str, email: str = "bench@example.com") -> str:
    password = "bench password " + secrets.token_hex(8)
    async with session.post(f"{base}/auth/register", json={"email": email, "password": password}) as response:
        if response.status != 201:
            raise RuntimeError(f"register: {response.status} {await response.text()}")
    async with session.post(f"{base}/auth/login", json={"email": email, "password": password}) as response:
        if response.status != 200:
            raise RuntimeError(f"login: {response.status} {await response.text()}")
        return (await response.json())["access_token"]


async def upload(session, base: str, token: str, path: Path, title: str = "bench clip") -> dict:
    """Upload a file as multipart, streamed from disk (aiohttp reads the open
    file in chunks; the body is never held in memory here)."""
    import aiohttp

    with open(path, "rb") as file:
        form = aiohttp.FormData()
        form.add_field("title", title)
        form.add_field("file", file, filename=path.name, content_type="video/mp4")
        async with session.post(
            f"{base}/videos/upload",
            data=form,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=900),
        ) as response:
            body = await response.text()
            if response.status != 201:
                raise RuntimeError(f"upload of {path}: {response.status} {body[:500]}")
            return (await response.json())["video"]


def stored_media_path(stack: Stack, video_id: int) -> Path:
    """The file the server stored for a video (storage/media/<key><ext>)."""
    import psycopg2

    from minitube.videos import extension_for

    conn = psycopg2.connect(stack.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT storage_key, content_type FROM videos WHERE id = %s", (video_id,))
            key, content_type = cur.fetchone()
    finally:
        conn.close()
    return stack.storage_dir / "media" / f"{key}{extension_for(content_type)}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (it reads fine in a terminal too)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def busy_cores(window: float = 2.0) -> float:
    """How many cores the whole machine kept busy over `window` seconds."""
    return psutil.cpu_percent(interval=window) / 100 * (psutil.cpu_count() or 1)


def wait_for_quiet(max_seconds: float, threshold_cores: float = 0.3) -> float:
    """On a shared machine, wait (at most max_seconds) until other processes
    use less than `threshold_cores`; returns the last load seen, in cores."""
    deadline = time.monotonic() + max_seconds
    load = busy_cores(1.0)
    if load >= threshold_cores and max_seconds > 0:
        print(f"  the machine is busy ({load:.1f} cores in use by other processes); "
              f"waiting up to {max_seconds:g}s for it to calm down", flush=True)
        while load >= threshold_cores and time.monotonic() < deadline:
            load = busy_cores(2.0)
        print(f"  {'quiet' if load < threshold_cores else 'still busy'}: {load:.1f} cores in use", flush=True)
    return load
