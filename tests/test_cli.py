"""`minitube dev` on a machine with nothing started: the README's `make run`."""

import asyncio
import signal
import time

import aiohttp
import psutil
import pytest

from .conftest import TEST_SECRET
from .servers import ServerProcess

pytestmark = pytest.mark.multiprocess


def processes_using(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


async def test_dev_runs_everything_and_ctrl_c_stops_everything(tmp_path, clips):
    data = tmp_path / "var"
    server = ServerProcess(
        "dev",
        {
            "DATABASE_URL": "",
            "REDIS_URL": "",
            "MINITUBE_DEV_DATA_DIR": str(data),
            "MINITUBE_STORAGE_DIR": str(tmp_path / "storage"),
            "MINITUBE_SECRET_KEY": TEST_SECRET,
        },
        tmp_path / "dev.log",
    ).start(timeout=120)
    try:
        base = server.url
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(f"{base}/auth/register", json={"email": "a@b.io", "password": "correct horse"}) as r:
                assert r.status == 201, await r.text()
            async with http.post(f"{base}/auth/login", json={"email": "a@b.io", "password": "correct horse"}) as r:
                token = (await r.json())["access_token"]
            form = aiohttp.FormData()
            form.add_field("title", "hello")
            form.add_field("file", clips["mp4"].read_bytes(), filename="a.mp4", content_type="video/mp4")
            async with http.post(f"{base}/videos/upload", data=form, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 201, await r.text()
                video = (await r.json())["video"]
            async with http.get(f"{base}{video['stream_url']}", headers={"Range": "bytes=0-1"}) as r:
                assert r.status == 206 and len(await r.read()) == 2
                assert r.headers["Content-Range"] == f"bytes 0-1/{video['size_bytes']}"
            async with http.get(f"{base}/videos") as r:
                assert [item["id"] for item in (await r.json())["items"]] == [video["id"]]
            async with http.ws_connect(f"{base}/videos/{video['id']}/active-viewers") as ws:
                assert (await ws.receive_json())["active_viewers"] == 1
        # redis-server renames its process title to its address.
        redis_marker = f"redis-server 127.0.0.1:{(data / 'redis' / 'port').read_text()}"
        assert processes_using(str(data / "postgres")), "embedded PostgreSQL should be running"
        assert processes_using(redis_marker), "embedded Redis should be running"
    finally:
        code = await asyncio.get_running_loop().run_in_executor(None, server.signal, signal.SIGINT)
    assert code == 0, server.log()
    deadline = time.monotonic() + 10
    while (processes_using(str(data / "postgres")) or processes_using(redis_marker)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert processes_using(str(data / "postgres")) == [], server.log()
    assert processes_using(redis_marker) == [], server.log()
