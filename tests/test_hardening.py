"""Hostile input and failing services."""

import asyncio
import time

import pytest

from .conftest import auth, expect

SQLISH = "'; DROP TABLE users; --"
HTMLISH = "<img src=x onerror=alert(1)><script>alert(2)</script>"


async def test_sql_and_html_looking_text_is_stored_and_returned_literally(client, register, upload, clips):
    user, token = await register("weird@example.com", display_name=SQLISH)
    assert user["display_name"] == SQLISH
    video = await upload(token, clips["mp4"], title=HTMLISH, description=SQLISH + "\n" + HTMLISH)
    body = await expect(await client.get(f"/videos/{video['id']}"), 200)
    assert body["video"]["title"] == HTMLISH
    assert body["video"]["description"] == SQLISH + "\n" + HTMLISH
    assert body["video"]["author"]["display_name"] == SQLISH
    feed = await expect(await client.get("/videos"), 200)
    assert feed["items"][0]["title"] == HTMLISH
    # Still one user and one video: nothing was executed.
    login = await client.post("/auth/login", json={"email": SQLISH, "password": SQLISH})
    assert login.status in (401, 422)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../minitube/settings.py",
        "/static/%2e%2e/minitube/settings.py",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static/../../etc/passwd",
        "/videos/1/../../etc/passwd",
        "/videos/%2e%2e%2fetc/stream",
    ],
)
async def test_path_traversal_gets_nothing(client, path):
    response = await client.get(path, allow_redirects=False)
    body = await response.read()
    assert response.status in (400, 403, 404), (path, response.status)
    assert b"DEV_SECRET" not in body and b"root:" not in body


async def test_absurd_ids_and_methods(client):
    for path in ("/videos/0", "/videos/-1", "/videos/1e9", "/videos/" + "9" * 40, "/videos/abc/stream"):
        response = await client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] in ("not_found", "video_not_found")
    response = await client.patch("/videos/1")
    assert response.status == 405 and (await response.json())["error"]["code"] == "method_not_allowed"


async def test_wrong_json_types_are_422_not_500(client):
    for body in ({"email": ["a"], "password": {"x": 1}}, {"email": None, "password": None}, {"email": 5, "password": 5}):
        response = await client.post("/auth/register", json=body)
        assert response.status == 422, body
        response = await client.post("/auth/login", json=body)
        assert response.status == 422, body


async def test_registration_and_upload_are_throttled_per_address(make_client, register, clips):
    client = await make_client(registrations_per_address=2, uploads_per_address=1)
    _, token = await register(app_client=client)
    await register(app_client=client)
    response = await client.post("/auth/register", json={"email": "third@example.com", "password": "correct horse"})
    body = await expect(response, 429)
    assert body["error"]["code"] == "rate_limited" and int(response.headers["Retry-After"]) > 0
    from .conftest import upload_form

    await expect(await client.post("/videos/upload", data=upload_form(clips["mp4"]), headers=auth(token)), 201)
    response = await client.post("/videos/upload", data=upload_form(clips["mp4"]), headers=auth(token))
    await expect(response, 429)
    assert "Retry-After" in response.headers


async def test_cors_only_for_configured_origins(make_client):
    client = await make_client(cors_origins=("https://app.example",))
    response = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    response = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await client.options(
        "/videos/upload", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = await client.options(
        "/videos/upload", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert refused.status == 405 and "Access-Control-Allow-Origin" not in refused.headers


# --- failing services ---------------------------------------------------------------


async def test_redis_down_degrades_without_lying(make_client, register, upload, clips, settings):
    healthy = await make_client()
    _, token = await register(app_client=healthy)
    video = await upload(token, clips["mp4"], app_client=healthy)

    client = await make_client(redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    await register("second@example.com", app_client=client)  # auth works (throttling fails open)
    await expect(await client.get("/auth/me", headers=auth(token)), 200)
    feed = await expect(await client.get("/videos"), 200)
    assert feed["items"][0]["active_viewers"] is None and feed["items"][0]["views"] == 0
    assert await expect(await client.get(video["stream_url"], headers={"Range": "bytes=0-1"}), 206)
    body = await expect(await client.post(f"/videos/{video['id']}/views"), 503)
    assert body["error"]["code"] == "redis_unavailable"
    ready = await expect(await client.get("/readyz"), 503)
    assert ready["checks"]["redis"] == "unavailable"
    ws = await client.ws_connect(f"/videos/{video['id']}/active-viewers")
    first = await ws.receive_json()
    assert first["active_viewers"] is None and first["views"] == 0
    await ws.close()


@pytest.mark.multiprocess
async def test_postgres_down_is_a_quick_503_and_the_pool_recovers(client, register, upload, clips, services):
    if services.postgres is None:
        pytest.skip("needs the embedded PostgreSQL to stop it")
    _, token = await register()
    video = await upload(token, clips["mp4"])
    await expect(await client.get(video["stream_url"], headers={"Range": "bytes=0-1"}), 206)
    await asyncio.get_running_loop().run_in_executor(None, services.postgres.pause)
    try:
        for path, headers in (("/videos", {}), (f"/videos/{video['id']}", {}), ("/auth/me", auth(token))):
            started = time.monotonic()
            response = await client.get(path, headers=headers)
            body = await expect(response, 503)
            assert body["error"]["code"] == "database_unavailable", path
            assert time.monotonic() - started < 5
            assert "Traceback" not in str(body) and "psycopg2" not in str(body)
        ready = await expect(await client.get("/readyz"), 503)
        assert ready["checks"] == {"postgres": "unavailable", "redis": "ok"}
        assert "PostgreSQL" in ready["error"]["message"]
        # Media already open keeps streaming from the cache while the database is away.
        data = await expect(await client.get(video["stream_url"], headers={"Range": "bytes=2-5"}), 206)
        assert data == clips["mp4"].read_bytes()[2:6]
    finally:
        await asyncio.get_running_loop().run_in_executor(None, services.postgres.resume)
    async with asyncio.timeout(20):
        while (await client.get("/readyz")).status != 200:
            await asyncio.sleep(0.2)
    feed = await expect(await client.get("/videos"), 200)
    assert [item["id"] for item in feed["items"]] == [video["id"]]
    await expect(await client.get("/auth/me", headers=auth(token)), 200)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "a@b.io\\u0000", "password": "password123"}',  # NUL: PostgreSQL cannot store it
        b'{"email": "a@b.io", "password": "\\ud800xxxxxxxxx"}',  # an unpaired surrogate
        b'{"email": "s\\ud800@b.io", "password": "password123"}',
        b"[" * 5000 + b"]" * 5000,  # deeper than the parser's recursion limit
        b'{"email": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "password": "x"}',
    ],
)
async def test_json_that_cannot_be_stored_is_400(client, raw):
    for path in ("/auth/register", "/auth/login"):
        body = await expect(await client.post(path, data=raw, headers={"Content-Type": "application/json"}), 400)
        assert body["error"]["code"] == "invalid_json"


async def test_json_must_be_sent_as_json(client):
    # A form or text/plain body would let any page post here without a CORS preflight.
    body = b'{"email": "a@b.io", "password": "password123"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await client.post("/auth/register", data=body, headers={"Content-Type": content_type})
        assert (await expect(response, 400))["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("email", ["a\u200b@b.io", "rtl\u202eoi.b@x.io", "ctl\x01@b.io"])
async def test_invisible_characters_in_emails_are_refused(client, email):
    body = await expect(await client.post("/auth/register", json={"email": email, "password": "password123"}), 422)
    assert "email" in body["error"]["fields"]


async def test_composed_and_decomposed_emails_are_one_account(client):
    await expect(await client.post("/auth/register", json={"email": "\u00e1@b.io", "password": "password123"}), 201)
    body = await expect(await client.post("/auth/register", json={"email": "a\u0301@b.io", "password": "password123"}), 409)
    assert body["error"]["code"] == "email_taken"


async def test_parallel_guesses_cannot_slip_under_the_login_limit(make_client, register):
    client = await make_client(login_failures_limit=5, login_failures_before_slowdown=100)
    await register("victim@example.com", app_client=client)
    guesses = [
        client.post("/auth/login", json={"email": "victim@example.com", "password": f"guess {i:04d}"}) for i in range(20)
    ]
    statuses = sorted(r.status for r in await asyncio.gather(*guesses))
    assert statuses.count(401) == 5 and statuses.count(429) == 15


async def test_a_successful_login_does_not_use_up_the_address_allowance(make_client, register):
    client = await make_client(login_failures_limit=3)
    await register("ann@example.com", app_client=client)
    for _ in range(6):
        await expect(await client.post("/auth/login", json={"email": "ann@example.com", "password": "correct horse battery"}), 200)


@pytest.mark.parametrize("subject", [" 1 ", "1_0", "\u0661", "01", "-1", 1])
async def test_token_subjects_must_be_plain_ids(client, register, subject):
    import jwt

    from .conftest import TEST_SECRET

    await register()
    now = int(time.time())
    token = jwt.encode({"sub": subject, "iat": now, "exp": now + 60}, TEST_SECRET, algorithm="HS256")
    await expect(await client.get("/auth/me", headers=auth(token)), 401)


@pytest.fixture
async def stream_url(register, upload, clips):
    _, token = await register()
    return (await upload(token, clips["mp4"]))["stream_url"]


@pytest.mark.parametrize(
    "header, status",
    [
        ("bytes=0-" + "9" * 5000, 206),  # a last-pos past any file is clipped
        ("bytes=" + "9" * 5000 + "-", 416),  # a first-pos past any file
        ("bytes=-" + "9" * 5000, 206),  # a suffix longer than any file is the file
        ("bytes = 0-5", 200),  # no whitespace around "=" in RFC 9110's grammar: ignored
        ("bytes=\u0660-\u0665", 200),  # Arabic-Indic digits are not DIGIT: ignored
    ],
)
async def test_absurd_ranges(client, stream_url, header, status):
    response = await client.get(stream_url, headers={"Range": header})
    await expect(response, status)


@pytest.mark.parametrize("limit", ["\u00b2", "\u0661", "9" * 5000, "5\n"])
async def test_absurd_limits_are_422(client, limit):
    await expect(await client.get("/videos", params={"limit": limit}), 422)


@pytest.mark.parametrize("raw", [b"v1:-1:-1", b"v1:1_0:1_0", b"v1: 1 : 1 ", b"v1:1:0", b"v1:1:1\n"])
async def test_lenient_looking_cursors_are_400(client, raw):
    import base64

    cursor = base64.urlsafe_b64encode(raw).decode()
    body = await expect(await client.get("/videos", params={"cursor": cursor}), 400)
    assert body["error"]["code"] == "invalid_cursor"


async def test_unicode_digit_ids_are_404(client, stream_url):
    await expect(await client.get("/videos/%D9%A1"), 404)


def multipart(*parts: bytes, boundary: str = "b") -> bytes:
    return b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"


@pytest.mark.parametrize(
    "body",
    [
        multipart(b'Content-Disposition: form-data; name="a\x01"\r\n\r\nx'),  # a control character in a header
        multipart(b"X-Long: " + b"a" * 9000 + b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nx'),
        multipart(b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b'Content-Disposition: form-data; name="t"\r\n\r\nx'),
        multipart(b'Content-Disposition: form-data; name="n"\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n'
                  b"--c\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--c--"),
    ],
)
async def test_malformed_multipart_is_400(client, register, body):
    _, token = await register()
    response = await client.post(
        "/videos/upload", data=body, headers={**auth(token), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert (await expect(response, 400))["error"]["code"] == "invalid_multipart"


async def test_unknown_parts_count_towards_the_limit(make_client, register, clips, settings):
    client = await make_client(max_upload_bytes=100_000)
    _, token = await register(app_client=client)

    async def body():  # chunked: no Content-Length to refuse up front
        yield b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="junk"\r\n\r\n'
        for _ in range(80):
            yield b"j" * 65536
        yield b"\r\n--b--\r\n"

    response = await client.post(
        "/videos/upload", data=body(), headers={**auth(token), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status == 413
    assert [p for p in settings.storage_dir.rglob("*") if p.is_file()] == []


async def test_a_file_part_without_a_file_name_is_still_the_file(make_client, register, clips):
    client = await make_client(max_upload_bytes=50_000)
    _, token = await register(app_client=client)
    data = multipart(
        b'Content-Disposition: form-data; name="title"\r\n\r\nx',
        b'Content-Disposition: form-data; name="file"\r\nContent-Type: video/mp4\r\n\r\n' + clips["mp4"].read_bytes(),
    )
    response = await client.post(
        "/videos/upload", data=data, headers={**auth(token), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert (await expect(response, 413))["error"]["code"] == "file_too_large"


async def test_login_throttling_holds_while_redis_is_down(make_client, register):
    healthy = await make_client()
    await register("ann@example.com", app_client=healthy)
    client = await make_client(redis_url="redis://127.0.0.1:1/0", login_failures_limit=3)
    wrong = {"email": "ann@example.com", "password": "wrong password"}
    for _ in range(3):
        await expect(await client.post("/auth/login", json=wrong), 401)
    response = await client.post("/auth/login", json=wrong)
    await expect(response, 429)
    assert int(response.headers["Retry-After"]) > 0


async def test_many_empty_parts_are_refused(client, register):
    _, token = await register()
    body = b"--b\r\n\r\n\r\n" * 10_000 + b"--b--\r\n"
    response = await client.post(
        "/videos/upload", data=body, headers={**auth(token), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert (await expect(response, 400))["error"]["code"] == "invalid_multipart"


async def test_a_preamble_counts_towards_the_limit(make_client, register, clips):
    client = await make_client(max_upload_bytes=50_000)
    _, token = await register(app_client=client)

    async def body():  # chunked, so only what is read can be counted
        for _ in range(40):
            yield b"preamble " * 8000 + b"\r\n"
        yield b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--b--\r\n'

    response = await client.post(
        "/videos/upload", data=body(), headers={**auth(token), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status == 413


@pytest.mark.parametrize("path", ["/static/app.js%00", "/static/%00", "/static/" + "a" * 5000])
async def test_impossible_static_names_are_404(client, path):
    body = await expect(await client.get(path), 404)
    assert body["error"]["code"] == "not_found"


async def test_static_files_ignore_ranges_and_revalidate(client):
    first = await client.get("/static/app.js")
    await expect(first, 200)
    assert first.content_type in ("text/javascript", "application/javascript")
    for headers in ({"Range": "bytes=999999-"}, {"Range": "bytes=abc"}, {"Range": "bytes=0-1,5-6"}):
        await expect(await client.get("/static/app.js", headers=headers), 200)
    for tag in (first.headers["ETag"], "*"):
        await expect(await client.get("/static/app.js", headers={"If-None-Match": tag}), 304)


async def test_login_with_an_absurd_email_stores_nothing_big(client, settings):
    import redis

    body = {"email": "x" * 60_000 + "@b.io", "password": "whatever"}
    await expect(await client.post("/auth/login", json=body), 422)
    r = redis.Redis.from_url(settings.redis_url)
    assert all(len(key) < 100 for key in r.scan_iter("rl:*"))
    r.close()


async def test_fullwidth_emails_are_the_same_account(client):
    await expect(await client.post("/auth/register", json={"email": "ab@qa.io", "password": "password123"}), 201)
    await expect(await client.post("/auth/register", json={"email": "\uff41\uff42@qa.io", "password": "password123"}), 409)
