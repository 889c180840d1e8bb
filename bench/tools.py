"""nginx (one worker, sendfile) as the reference server, and wrk as the load
generator, both driven from temporary files."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

# Random 1 MiB-aligned ranges: `wrk -s ranges.lua URL -- FILE_SIZE CHUNK`.
RANGES_LUA = """
local size, chunk, blocks

function init(args)
  size = tonumber(args[1])
  chunk = tonumber(args[2])
  blocks = math.floor(size / chunk)
  math.randomseed(os.time())
end

function request()
  local first = math.random(0, blocks - 1) * chunk
  return wrk.format(nil, nil, {["Range"] = "bytes=" .. first .. "-" .. (first + chunk - 1)})
end
"""

# One fixed Range header on every request (no request() function: wrk
# builds the request once): `wrk -s fixed.lua URL -- "bytes=0-1"`.
FIXED_LUA = """
function init(args)
  wrk.headers["Range"] = args[1]
end
"""

DONE_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclasses.dataclass
class WrkResult:
    requests: int
    bytes: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    server_cpu_seconds: float = 0.0
    # CPU seconds used by everything else on the machine meanwhile (other
    # users' processes): system-wide busy time minus the server, wrk and us.
    other_cpu_seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6

    @property
    def cpu_percent(self) -> float:
        return 100 * self.server_cpu_seconds / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def other_cores(self) -> float:
        return self.other_cpu_seconds / self.seconds

    def __add__(self, other: "WrkResult") -> "WrkResult":
        """Two runs of the same cell as one (p99: the worse of the two)."""
        return WrkResult(
            requests=self.requests + other.requests,
            bytes=self.bytes + other.bytes,
            seconds=self.seconds + other.seconds,
            errors={k: self.errors[k] + other.errors[k] for k in self.errors},
            p50_ms=max(self.p50_ms, other.p50_ms),
            p99_ms=max(self.p99_ms, other.p99_ms),
            server_cpu_seconds=self.server_cpu_seconds + other.server_cpu_seconds,
            other_cpu_seconds=self.other_cpu_seconds + other.other_cpu_seconds,
        )


def _busy_seconds() -> float:
    """System-wide user + system CPU seconds. irq/softirq are left out: on
    loopback they are mostly this benchmark's own packets."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system


def _own_and_children_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once reaped
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx's worker)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        for p in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
    return total


class Wrk:
    def __init__(self, binary: str, workdir: Path, threads: int = 1, connections: int = 8) -> None:
        self.binary = binary
        self.threads = threads
        self.connections = connections
        self.ranges_script = workdir / "ranges.lua"
        self.fixed_script = workdir / "fixed.lua"
        self.ranges_script.write_text(RANGES_LUA + DONE_LUA)
        self.fixed_script.write_text(FIXED_LUA + DONE_LUA)

    # wrk takes whole seconds.
    def random_ranges(self, url: str, file_size: int, chunk: int, seconds: int, server_pid: int) -> WrkResult:
        return self._run(url, self.ranges_script, [str(file_size), str(chunk)], seconds, server_pid)

    def fixed_range(self, url: str, range_header: str, seconds: int, server_pid: int) -> WrkResult:
        return self._run(url, self.fixed_script, [range_header], seconds, server_pid)

    def _run(self, url: str, script: Path, args: list[str], seconds: int, server_pid: int) -> WrkResult:
        command = [
            self.binary, f"-t{self.threads}", f"-c{self.connections}", f"-d{int(seconds)}s", "--timeout", "10s",
            "-s", str(script), url, "--", *args,
        ]  # fmt: skip
        cpu_before, busy_before, ours_before = process_cpu_seconds(server_pid), _busy_seconds(), _own_and_children_seconds()
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        cpu = process_cpu_seconds(server_pid) - cpu_before
        other = _busy_seconds() - busy_before - cpu - (_own_and_children_seconds() - ours_before)
        line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        values = [float(v) for v in line.split()[1:]]
        requests, nbytes, duration_us, connect, read, write, status, timeout, p50, p99 = values
        return WrkResult(
            requests=int(requests),
            bytes=int(nbytes),
            seconds=duration_us / 1e6,
            errors={"connect": int(connect), "read": int(read), "write": int(write), "status": int(status),
                    "timeout": int(timeout)},
            p50_ms=p50 / 1000,
            p99_ms=p99 / 1000,
            server_cpu_seconds=cpu,
            other_cpu_seconds=max(other, 0.0),
        )


class Nginx:
    """nginx with one worker and sendfile on, serving one file at /video."""

    def __init__(self, binary: str, prefix: Path, port: int, file: Path) -> None:
        self.binary = binary
        self.prefix = prefix
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        prefix.mkdir(parents=True, exist_ok=True)
        user = "user root root;" if os.geteuid() == 0 else ""  # the file is in a 0700 temp folder
        temp_paths = "\n".join(
            f"  {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
daemon off;
master_process on;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 75s;
  keepalive_requests 100000000;
  default_type video/mp4;
{temp_paths}
  server {{
    listen 127.0.0.1:{port};
    location = /video {{ alias {file}; }}
    location = /healthz {{ return 200 "ok"; }}
  }}
}}
""")
        self.proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=open(prefix / "stderr.log", "wb"),
        )
        self.pid = self.proc.pid
        wait_http(f"{self.url}/healthz", self.proc, prefix / "error.log")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_http(url: str, proc: subprocess.Popen, log: Path | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}): {text}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def check_range(url: str, first: int, last: int, size: int) -> None:
    """One request: the target must answer 206 with exactly that range."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={first}-{last}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        expected = f"bytes {first}-{last}/{size}"
        if response.status != 206 or response.headers.get("Content-Range") != expected or len(body) != last - first + 1:
            raise RuntimeError(
                f"{url}: expected 206 {expected} with {last - first + 1} bytes, got {response.status} "
                f"{response.headers.get('Content-Range')} with {len(body)} bytes"
            )
