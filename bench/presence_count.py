"""What one "watching now" recount costs Redis as the audience grows:
`python -m bench.presence_count`.

minitube.viewers.COUNT_LUA reads every member of a video's presence set and
counts distinct viewers inside Redis (single-threaded: nothing else runs
meanwhile). It runs once per WebSocket join, plus once per broadcast. This
times it on sets of N members shaped like the server's.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

from minitube.embedded import EmbeddedRedis
from minitube.viewers import COUNT_LUA

from .common import table


def main(argv: list[str] | None = None) -> int:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [1000, 5000, 10000, 20000]
    if any(not 1 <= n <= 200_000 for n in sizes):
        print("sizes must be 1..200000", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="minitube-bench-presence-"))
    server = EmbeddedRedis(root, persist=False)
    server.start()
    rows = []
    try:
        client = redis.Redis.from_url(server.url)
        count = client.register_script(COUNT_LUA)
        process = secrets.token_hex(6)
        for n in sizes:
            client.delete("presence:1")
            now = time.time()
            members = {f"a:{secrets.token_urlsafe(16)}:127.0.0.1|{process}:{i}": now + 25 for i in range(n)}
            for start in range(0, n, 5000):
                client.zadd("presence:1", dict(list(members.items())[start:start + 5000]))
            calls, started = 0, time.perf_counter()
            while calls < 200 and time.perf_counter() - started < 3:
                assert count(keys=["presence:1"], args=[now]) == n
                calls += 1
            per_call = (time.perf_counter() - started) / calls
            rows.append([f"{n:,}", f"{per_call * 1000:.2f} ms", f"{1 / per_call:,.0f}"])
        client.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(table(["members", "COUNT_LUA per call", "max recounts/s (Redis busy with nothing else)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
