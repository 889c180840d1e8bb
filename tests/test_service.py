"""Service routes, the error envelope, the page, and the deployment files."""

import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from minitube.app import create_app
from minitube.errors import NotFound
from minitube.settings import DEV_SECRET, Settings, SettingsError

from .conftest import expect

ROOT = Path(__file__).resolve().parent.parent


async def test_healthz_and_readyz(client):
    assert await expect(await client.get("/healthz"), 200) == {"status": "ok"}
    body = await expect(await client.get("/readyz"), 200)
    assert body == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_readyz_names_what_is_down(make_client, settings):
    client = await make_client(redis_url="redis://127.0.0.1:1/0")
    response = await client.get("/readyz")
    body = await expect(response, 503)
    assert body["error"]["code"] == "not_ready" and "Redis" in body["error"]["message"]
    assert body["checks"] == {"postgres": "ok", "redis": "unavailable"}


async def test_unknown_route_and_wrong_method_use_the_envelope(client):
    body = await expect(await client.get("/no/such/place"), 404)
    assert body == {"error": {"code": "not_found", "message": "There is nothing at this address."}}
    response = await client.put("/videos")
    body = await expect(response, 405)
    assert body["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    "raise_, status, code",
    [
        (lambda: NotFound("gone"), 404, "not_found"),
        (lambda: RuntimeError("secret internals at /etc/passwd"), 500, "internal_error"),
        (lambda: web.HTTPBadRequest(), 400, "bad_request"),
        (lambda: __import__("psycopg2").OperationalError("connection refused"), 503, "database_unavailable"),
    ],
)
async def test_failing_handlers_answer_in_the_envelope(aiohttp_client, settings, caplog, raise_, status, code):
    async def failing(request):
        raise raise_()

    app = create_app(settings)
    app.router.add_get("/boom", failing)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/boom")
        body = await expect(response, status)
    assert body["error"]["code"] == code
    text = json.dumps(body)
    assert "Traceback" not in text and "/etc/passwd" not in text and "refused" not in text
    if status >= 500:
        assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


async def test_every_response_has_a_request_id_and_safety_headers(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc12345-trace"})
    assert response.headers["X-Request-ID"] == "abc12345-trace"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    "path, status", [("/", 200), ("/watch/1", 404), ("/upload", 200), ("/login", 200), ("/register", 200)]
)
async def test_the_page(client, path, status):
    response = await client.get(path)  # /watch/1: no such video yet, the page says so
    html = (await expect(response, status)).decode()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "mt_viewer" in response.cookies
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and not re.search(r"<script(?![^>]*src=)[^>]*>", html)  # no inline script
    for asset in scripts + re.findall(r'<link[^>]*href="(/static/[^"]+)"', html):
        asset_response = await client.get(asset)
        await expect(asset_response, 200)


def test_settings_from_environment():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://x", "REDIS_URL": "redis://y", "PORT": "9000",
         "MINITUBE_MAX_UPLOAD_BYTES": "1024", "MINITUBE_ALLOWED_ORIGINS": "https://a.io, https://b.io",
         "MINITUBE_TRUST_PROXY": "true"}
    )
    assert settings.port == 9000 and settings.max_upload_bytes == 1024 and settings.trust_proxy is True
    assert settings.allowed_origins == ("https://a.io", "https://b.io")
    with pytest.raises(SettingsError):
        Settings.from_env({"PORT": "eighty"})


def test_production_refuses_the_dev_secret():
    settings = Settings(database_url="postgresql://x", redis_url="redis://y", env="production", secret_key=DEV_SECRET)
    with pytest.raises(SettingsError, match="MINITUBE_SECRET_KEY"):
        settings.check()
    Settings(database_url="postgresql://x", redis_url="redis://y", env="production", secret_key="k" * 40).check()


def test_procfile_runs_serve_and_migrates_on_release():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert lines["web"].split() == ["python", "-m", "minitube", "serve"]
    assert lines["release"].split() == ["python", "-m", "minitube", "migrate"]


def test_docker_compose_describes_the_full_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"app", "postgres", "redis"}
    app = services["app"]
    assert app["build"] == "."
    assert set(app["depends_on"]) == {"postgres", "redis"}
    assert all(dep["condition"] == "service_healthy" for dep in app["depends_on"].values())
    env = app["environment"]
    assert {"DATABASE_URL", "REDIS_URL", "MINITUBE_SECRET_KEY", "PORT"} <= set(env)
    # Credentials come from the environment / .env, never literals.
    text = (ROOT / "docker-compose.yaml").read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINITUBE_SECRET_KEY"):
        assert f"${{{secret}:?" in text
    assert "${POSTGRES_PASSWORD" in env["DATABASE_URL"]
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]
    assert {"pgdata", "media"} <= set(compose["volumes"])
    example = (ROOT / ".env.example").read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINITUBE_SECRET_KEY"):
        assert re.search(rf"^{secret}=", example, re.M)


def test_dockerfile_serves_as_an_unprivileged_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and not line.startswith("#") and not line.startswith(" ")]
    assert instructions[0] == "FROM" and "USER" in instructions
    assert 'CMD ["python", "-m", "minitube", "serve"]' in dockerfile
    for folder in ("minitube", "frontend", "migrations"):
        assert f"COPY {folder} ./{folder}" in dockerfile


async def test_the_page_knows_the_server_limits(make_client):
    client = await make_client(max_upload_bytes=12345, view_threshold_seconds=7.5)
    html = (await expect(await client.get("/upload"), 200)).decode()
    assert '<meta name="minitube-max-upload-bytes" content="12345">' in html
    assert '<meta name="minitube-view-threshold" content="7.5">' in html


async def test_a_browser_on_a_wrong_address_gets_the_page_with_404(client, register, upload, clips):
    html = {"Accept": "text/html,application/xhtml+xml"}
    response = await client.get("/no/such/page", headers=html)
    assert response.status == 404 and response.content_type == "text/html"
    response = await client.get("/watch/999", headers=html)
    assert response.status == 404 and response.content_type == "text/html"
    _, token = await register()
    video = await upload(token, clips["mp4"])
    await expect(await client.get(f"/watch/{video['id']}", headers=html), 200)
    # Scripts still get the JSON envelope.
    body = await expect(await client.get("/no/such/page"), 404)
    assert body["error"]["code"] == "not_found"
