import time

import jwt
import psycopg2

from .conftest import TEST_SECRET, auth, expect


async def test_register_then_login_then_me(client):
    body = await expect(
        await client.post("/auth/register", json={"email": " Ann@Example.COM ", "password": "correct horse", "display_name": "Ann"}),
        201,
    )
    user = body["user"]
    assert set(user) == {"id", "email", "display_name", "created_at"}
    assert user["email"] == "ann@example.com" and user["display_name"] == "Ann"
    assert user["created_at"].endswith("Z")

    login = await expect(await client.post("/auth/login", json={"email": "ANN@example.com", "password": "correct horse"}), 200)
    assert login["token_type"] == "bearer" and login["expires_in"] == 3600
    assert login["user"] == user
    claims = jwt.decode(login["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert {"sub", "iat", "exp"} <= set(claims) and claims["sub"] == str(user["id"])

    me = await expect(await client.get("/auth/me", headers=auth(login["access_token"])), 200)
    assert me == {"user": user}


async def test_email_is_one_account_whatever_its_case(client, register):
    await register("a@x.io")
    body = await expect(await client.post("/auth/register", json={"email": "A@X.io", "password": "another password"}), 409)
    assert body["error"]["code"] == "email_taken"
    assert body["error"]["fields"] == {"email": "already registered"}


async def test_register_validation(client):
    body = await expect(await client.post("/auth/register", json={"email": "not-an-email", "password": "short"}), 422)
    assert body["error"]["code"] == "validation_failed"
    assert set(body["error"]["fields"]) == {"email", "password"}
    body = await expect(await client.post("/auth/register", json={"email": "a@b.io", "password": 12345678}), 422)
    assert "password" in body["error"]["fields"]


async def test_malformed_json_is_400(client):
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        body = await expect(await client.post("/auth/register", data=raw, headers={"Content-Type": "application/json"}), 400)
        assert body["error"]["code"] == "invalid_json"


async def test_oversized_json_is_413(client):
    body = await expect(
        await client.post("/auth/login", data=b"{" + b" " * 100_000 + b"}", headers={"Content-Type": "application/json"}),
        413,
    )
    assert body["error"]["code"] == "too_large"


async def test_wrong_password_and_unknown_email_look_alike(client, register):
    await register("ann@example.com")
    wrong = await client.post("/auth/login", json={"email": "ann@example.com", "password": "wrong password"})
    unknown = await client.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong password"})
    assert (await expect(wrong, 401)) == (await expect(unknown, 401))
    assert (await wrong.json())["error"]["code"] == "invalid_credentials"


async def test_login_time_does_not_reveal_unknown_emails(client, register):
    await register("ann@example.com")

    async def timed(email):
        started = time.perf_counter()
        await expect(await client.post("/auth/login", json={"email": email, "password": "wrong password"}), 401)
        return time.perf_counter() - started

    known = min([await timed("ann@example.com") for _ in range(3)])
    unknown = min([await timed("nobody@example.com") for _ in range(3)])
    # Both paths run one Argon2 verification; without the dummy hash the
    # unknown e-mail would answer an order of magnitude faster.
    assert unknown > known * 0.3, (known, unknown)


async def test_me_requires_a_valid_token(client, register, settings):
    user, token = await register()
    response = await client.get("/auth/me")
    body = await expect(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"]["code"] == "unauthorized"

    now = int(time.time())
    claims = {"sub": str(user["id"]), "iat": now, "exp": now + 60}
    forged = {
        "none_alg": jwt.encode(claims, None, algorithm="none"),
        "wrong_key": jwt.encode(claims, "another secret that is long enough 1234567", algorithm="HS256"),
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, TEST_SECRET, algorithm="HS256"),
        "no_exp": jwt.encode({"sub": str(user["id"]), "iat": now}, TEST_SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
        "tampered": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
    }
    for name, bad in forged.items():
        response = await client.get("/auth/me", headers=auth(bad))
        body = await expect(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert body["error"]["code"] in ("invalid_token", "token_expired"), name
    body = await expect(await client.get("/auth/me", headers={"Authorization": "Basic abc"}), 401)


async def test_token_of_a_deleted_user_is_401(client, register, settings):
    user, token = await register()
    conn = psycopg2.connect(settings.database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (user["id"],))
    conn.close()
    await expect(await client.get("/auth/me", headers=auth(token)), 401)


async def test_logout_all_revokes_tokens(client, register):
    _, token = await register()
    await expect(await client.post("/auth/logout-all", headers=auth(token)), 204)
    body = await expect(await client.get("/auth/me", headers=auth(token)), 401)
    assert body["error"]["code"] == "invalid_token"


async def test_repeated_failed_logins_are_throttled(make_client, register):
    client = await make_client(login_failures_limit=4, login_failures_before_slowdown=2)
    await register("ann@example.com", app_client=client)
    for _ in range(4):
        await expect(await client.post("/auth/login", json={"email": "ann@example.com", "password": "nope nope"}), 401)
    response = await client.post("/auth/login", json={"email": "ann@example.com", "password": "correct horse battery"})
    body = await expect(response, 429)
    assert body["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 900
