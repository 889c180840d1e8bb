import asyncio
import json
import struct

import aiohttp
import psycopg2
import pytest

from minitube.media import mp4_top_level_boxes

from .conftest import auth, expect, upload_form


def rows(settings, sql):
    conn = psycopg2.connect(settings.database_url)
    with conn.cursor() as cur:
        cur.execute(sql)
        result = cur.fetchall()
    conn.close()
    return result


def stored_files(settings):
    return sorted(p.relative_to(settings.storage_dir).as_posix() for p in settings.storage_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "kind, content_type",
    [("mp4", "video/mp4"), ("mov", "video/quicktime"), ("webm", "video/webm"), ("mkv", "video/x-matroska")],
)
async def test_upload_each_container(client, register, clips, settings, kind, content_type):
    user, token = await register(display_name="Ann")
    response = await client.post(
        "/videos/upload", data=upload_form(clips[kind], "Сплав по реке 🚣", description="  line one\nline two  "),
        headers=auth(token),
    )
    video = (await expect(response, 201))["video"]
    assert response.headers["Location"] == f"/videos/{video['id']}"
    assert video["content_type"] == content_type
    assert video["title"] == "Сплав по реке 🚣" and video["description"] == "line one\nline two"
    assert video["author"] == {"id": user["id"], "display_name": "Ann"}
    assert video["size_bytes"] == clips[kind].stat().st_size
    assert 1.9 <= video["duration_seconds"] <= 2.1
    assert (video["width"], video["height"]) == (320, 180)
    assert video["views"] == 0 and video["active_viewers"] == 0
    assert video["stream_url"] == f"/videos/{video['id']}/stream"
    assert video["thumbnail_url"] == f"/videos/{video['id']}/thumbnail"

    poster = await client.get(video["thumbnail_url"])
    data = await expect(poster, 200)
    assert poster.headers["Content-Type"] == "image/jpeg" and data[:3] == b"\xff\xd8\xff"

    stream = await client.get(video["stream_url"])
    assert await expect(stream, 200) == clips[kind].read_bytes()
    assert stream.headers["Content-Type"] == content_type
    assert [p for p in stored_files(settings) if p.startswith("tmp/")] == []


async def test_index_at_the_end_is_moved_to_the_front(client, register, clips, settings, tmp_path):
    def order(path):
        return [kind for kind, _, _ in mp4_top_level_boxes(str(path))]

    assert order(clips["late_moov"]).index(b"mdat") < order(clips["late_moov"]).index(b"moov")
    _, token = await register()
    video = await (await client.post("/videos/upload", data=upload_form(clips["late_moov"]), headers=auth(token))).json()
    body = await expect(await client.get(video["video"]["stream_url"]), 200)
    served = tmp_path / "served.mp4"
    served.write_bytes(body)
    kinds = order(served)
    assert kinds.index(b"moov") < kinds.index(b"mdat")
    assert video["video"]["size_bytes"] == len(body)


@pytest.mark.parametrize(
    "kind, code, words",
    [
        ("text", "unsupported_media", "not a video container"),
        ("empty", "unsupported_media", "empty"),
        ("jpeg", "unsupported_media", "JPEG image"),
        ("truncated", "truncated_video", "truncated"),
        ("audio_only", "no_video_track", "no video track"),
    ],
)
async def test_not_a_video_is_415_and_leaves_nothing(client, register, clips, settings, kind, code, words):
    _, token = await register()
    body = await expect(await client.post("/videos/upload", data=upload_form(clips[kind]), headers=auth(token)), 415)
    assert body["error"]["code"] == code
    assert words in body["error"]["message"]
    assert rows(settings, "SELECT count(*) FROM videos") == [(0,)]
    assert stored_files(settings) == []


async def test_upload_requires_a_token(client, clips, settings):
    response = await client.post("/videos/upload", data=upload_form(clips["mp4"]))
    await expect(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "title, description, field",
    [(None, None, "title"), ("   ", None, "title"), ("x" * 201, None, "title"), ("ok", "d" * 5001, "description")],
)
async def test_invalid_fields_are_422(client, register, clips, settings, title, description, field):
    _, token = await register()
    form = upload_form(clips["mp4"], title, description)
    body = await expect(await client.post("/videos/upload", data=form, headers=auth(token)), 422)
    assert field in body["error"]["fields"]
    assert stored_files(settings) == []


async def test_missing_file_is_422_and_not_multipart_is_400(client, register):
    _, token = await register()
    body = await expect(await client.post("/videos/upload", data=upload_form(None), headers=auth(token)), 422)
    assert "file" in body["error"]["fields"]
    body = await expect(await client.post("/videos/upload", json={"title": "x"}, headers=auth(token)), 400)
    assert body["error"]["code"] == "invalid_multipart"


async def test_client_file_name_is_only_metadata(client, register, clips, settings):
    _, token = await register()
    for name in ("../../etc/evil.mp4", "/tmp/abs.mp4", "видео.mp4", "a\u202eb.mp4"):
        form = upload_form(clips["mp4"], filename=name)
        await expect(await client.post("/videos/upload", data=form, headers=auth(token)), 201)
    files = stored_files(settings)
    assert len([f for f in files if f.startswith("media/")]) == 4
    assert all(not any(part in f for part in ("evil", "abs", "видео", "..")) for f in files)
    names = [r[0] for r in rows(settings, "SELECT original_filename FROM videos ORDER BY id")]
    assert names[0].endswith("evil.mp4") and names[2] == "видео.mp4" and names[3] == "ab.mp4"


async def test_too_large_is_413_without_reading_the_rest(make_client, register, clips, settings):
    client = await make_client(max_upload_bytes=50_000)
    _, token = await register(app_client=client)
    body = await expect(await client.post("/videos/upload", data=upload_form(clips["mp4"]), headers=auth(token)), 413)
    assert body["error"]["code"] == "file_too_large"
    assert stored_files(settings) == []

    # A streamed body with no Content-Length is cut off at the limit too.
    async def endless():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
        yield clips["mp4"].read_bytes()[:4096]
        for _ in range(1000):
            yield b"\0" * 65536
    response = await client.post(
        "/videos/upload", data=endless(), headers={**auth(token), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status == 413
    assert stored_files(settings) == []


async def test_aborted_upload_leaves_no_file_and_no_row(client, register, clips, settings):
    _, token = await register()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        f"POST /videos/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n"
        "--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhalf\r\n"
        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
    ).encode()
    writer.write(head + clips["mp4"].read_bytes()[:50_000])
    await writer.drain()
    await asyncio.sleep(0.3)
    assert any(p.startswith("tmp/") for p in stored_files(settings))  # the upload is under way
    writer.close()
    for _ in range(50):
        await asyncio.sleep(0.1)
        if stored_files(settings) == []:
            break
    assert stored_files(settings) == []
    assert rows(settings, "SELECT count(*) FROM videos") == [(0,)]


async def test_delete_by_author_removes_everything(client, register, upload, clips, settings):
    _, token = await register()
    _, other = await register()
    video = await upload(token, clips["mp4"])
    await expect(await client.get(video["stream_url"], headers={"Range": "bytes=0-1"}), 206)  # now cached
    assert len(stored_files(settings)) == 2

    body = await expect(await client.delete(f"/videos/{video['id']}", headers=auth(other)), 403)
    assert body["error"]["code"] == "not_author"
    await expect(await client.delete(f"/videos/{video['id']}"), 401)
    await expect(await client.delete(f"/videos/{video['id']}", headers=auth(token)), 204)

    assert stored_files(settings) == []
    await expect(await client.get(video["stream_url"], headers={"Range": "bytes=0-1"}), 404)
    await expect(await client.get(f"/videos/{video['id']}"), 404)
    await expect(await client.get(video["thumbnail_url"]), 404)
    feed = await expect(await client.get("/videos"), 200)
    assert feed["items"] == []
    await expect(await client.delete(f"/videos/{video['id']}", headers=auth(token)), 404)


async def test_get_video_and_unknown_ids(client, register, upload, clips):
    _, token = await register()
    video = await upload(token, clips["mp4"], title="<img src=x onerror=alert(1)>")
    body = await expect(await client.get(f"/videos/{video['id']}"), 200)
    assert body["video"] == video
    for path in ("/videos/999", "/videos/999/stream", "/videos/999/thumbnail", "/videos/999/views"):
        body = await expect(await client.get(path), 404)
        assert body["error"]["code"] in ("video_not_found", "not_found")
    await expect(await client.get("/videos/99999999999999999999999"), 404)


async def test_expect_100_continue_is_answered_before_the_body(make_client, register, clips):
    client = await make_client(max_upload_bytes=100_000)
    _, token = await register(app_client=client)

    async def ask(headers):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST /videos/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n{head}\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return status

    assert (await ask({"Content-Length": "5000000000", "Authorization": f"Bearer {token}"})).startswith(b"HTTP/1.1 413")
    assert (await ask({"Content-Length": "5000"})).startswith(b"HTTP/1.1 401")
    assert (await ask({"Content-Length": "5000", "Authorization": f"Bearer {token}"})).startswith(b"HTTP/1.1 100")
