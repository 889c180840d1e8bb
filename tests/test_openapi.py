"""The OpenAPI document: valid OpenAPI 3.1, in step with the route table, and
true to what the server really answers; and Swagger UI served offline.

Schemas are checked with jsonschema_rs (what schemathesis uses), and the
document itself against the OpenAPI 3.1 meta-schema that schemathesis ships.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from urllib.parse import quote

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web

from minitube.openapi import SPEC_PATH

from .conftest import auth, expect, upload_form

# The bundled page answers these paths too; `/` stands for them in the document.
# The page answers these paths too (`/` stands for them in the document), and
# "static" serves its files.
PAGE_ROUTES = {"page-watch", "page-upload", "page-login", "page-register", "static"}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SPEC_URI = "urn:minitube:openapi"


# --- reading the document ----------------------------------------------------------


def load_spec() -> dict:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def resolve(spec: dict, node: dict, pointer: str) -> tuple[dict, str]:
    """Follow a local $ref (if any): the node it names and that node's JSON pointer."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = spec
        for token in pointer.strip("/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def documented_response(spec: dict, path: str, method: str, status: int) -> tuple[dict, str]:
    operation = spec["paths"][path][method]
    responses = operation["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, which it does not document"
    pointer = f"/paths/{pointer_escape(path)}/{method}/responses/{status}"
    return resolve(spec, responses[str(status)], pointer)


def objects(node, pointer=""):
    """Every JSON object in `node`, with its JSON pointer."""
    if isinstance(node, dict):
        yield pointer, node
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield from objects(value, f"{pointer}/{pointer_escape(str(key))}")


def operations(spec: dict):
    """(method, path, operation) for every operation in the document."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


class Contract:
    """Validates real answers against the document's response definitions."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.registry = jsonschema_rs.Registry([(SPEC_URI, spec)], draft=jsonschema_rs.Draft202012)

    def validator(self, pointer: str) -> jsonschema_rs.Validator:
        ref = f"{SPEC_URI}#{quote(pointer, safe='/~')}"
        return jsonschema_rs.validator_for({"$ref": ref}, registry=self.registry, validate_formats=True)

    def validate(self, pointer: str, instance) -> None:
        try:
            self.validator(pointer).validate(instance)
        except jsonschema_rs.ValidationError as exc:
            pytest.fail(f"{json.dumps(instance)[:500]}\ndoes not match {pointer}:\n{exc}")

    async def check(self, response, path: str, method: str | None = None, definition: str | None = None):
        """Assert that `response` is one the document allows for `method path`
        (or, with `definition`, the shared response of that name); return its body."""
        method = method or response.method.lower()
        if definition is None:
            documented, pointer = documented_response(self.spec, path, method, response.status)
        else:
            pointer = f"/components/responses/{definition}"
            documented, _ = resolve(self.spec, {"$ref": f"#{pointer}"}, pointer)
        for name, header in documented.get("headers", {}).items():
            header, _ = resolve(self.spec, header, "")
            if header.get("required"):
                assert name in response.headers, f"{method.upper()} {path} {response.status}: no {name} header"
        raw = await response.read()
        content = documented.get("content", {})
        if not content:
            assert raw == b"", f"{method.upper()} {path} {response.status} documents no body, got {raw[:200]!r}"
            return raw
        assert response.content_type in content, (
            f"{method.upper()} {path} {response.status}: {response.content_type} is not one of {sorted(content)}"
        )
        if response.content_type != "application/json":
            return raw
        body = json.loads(raw)
        self.validate(f"{pointer}/content/application~1json/schema", body)
        return body


@pytest.fixture
async def spec(client) -> dict:
    return await expect(await client.get("/api/openapi.json"), 200)


@pytest.fixture
def contract(spec) -> Contract:
    return Contract(spec)


# --- the document itself ----------------------------------------------------------------


async def test_served_document_is_the_file(client):
    response = await client.get("/api/openapi.json")
    assert await expect(response, 200) == load_spec()
    assert response.content_type == "application/json"


def test_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.")
    # The OpenAPI 3.1 meta-schema checks the structure but not the schemas inside ...
    schemathesis.openapi.from_dict(spec).validate()
    # ... so each of those is checked against JSON Schema 2020-12 on its own.
    schemas = [(f"/components/schemas/{name}", schema) for name, schema in spec["components"]["schemas"].items()]
    schemas += [(f"{pointer}/schema", node["schema"]) for pointer, node in objects(spec["paths"]) if "schema" in node]
    assert len(schemas) > len(spec["components"]["schemas"])
    for pointer, schema in schemas:
        assert jsonschema_rs.meta.is_valid({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}), pointer


def test_references_resolve_and_operation_ids_are_unique(spec):
    for pointer, node in objects(spec):
        if isinstance(node.get("$ref"), str):
            assert node["$ref"].startswith("#/"), f"{pointer}: non-local reference"
            resolve(spec, node, pointer)  # KeyError when dangling
    operation_ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(operation_ids) == len(set(operation_ids))


def test_examples_match_their_schemas(spec, contract):
    examples = [(pointer, node) for pointer, node in objects(spec) if "example" in node and "schema" in node]
    assert len(examples) > 20
    for pointer, node in examples:
        contract.validate(f"{pointer}/schema", node["example"])


def test_errors_use_the_envelope_and_token_routes_document_401(spec):
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            response, _ = resolve(spec, response, "")
            json_schema = response.get("content", {}).get("application/json", {}).get("schema")
            if int(status) >= 400 and json_schema is not None:
                assert json_schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"
        if operation.get("security"):
            assert "401" in operation["responses"], f"{method} {path} takes a token but documents no 401"


# --- the document and the route table ------------------------------------------------------


def app_operations(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or isinstance(resource, web.StaticResource) or resource.name in PAGE_ROUTES:
            continue
        if route.method == "HEAD":  # aiohttp adds one to every GET
            continue
        found.add((route.method.lower(), resource.canonical))
    return found


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(method, path) for method, path, _ in operations(spec)}


async def test_document_and_route_table_agree(client, spec):
    in_app = app_operations(client.app)
    in_spec = spec_operations(spec) - {("head", "/videos/{id}/stream")}
    assert in_app - in_spec == set(), "routes missing from the document"
    assert in_spec - in_app == set(), "documented operations the server does not have"
    assert ("head", "/videos/{id}/stream") in spec_operations(spec)


async def test_other_methods_are_405_with_the_documented_allow(client, spec, contract):
    for path, item in spec["paths"].items():
        response = await client.patch(path.replace("{id}", "1"))
        assert response.status == 405, path
        await contract.check(response, path, definition="MethodNotAllowed")
        documented = {method.upper() for method in item if method in METHODS}
        if "GET" in documented:
            documented.add("HEAD")
        assert set(response.headers["Allow"].split(",")) == documented, path


async def test_unknown_path_is_the_documented_404(client, contract):
    response = await client.get("/no/such/thing")
    assert response.status == 404
    body = await contract.check(response, "/no/such/thing", "get", definition="NotFound")
    assert body["error"]["code"] == "not_found"


# --- real answers against the document --------------------------------------------------------


async def test_auth_answers_conform(client, contract):
    credentials = {"email": "ann@example.com", "password": "correct horse battery"}
    register = await client.post("/auth/register", json={**credentials, "display_name": "Ann"})
    assert register.status == 201
    user = (await contract.check(register, "/auth/register"))["user"]

    login = await client.post("/auth/login", json=credentials)
    assert login.status == 200
    token = (await contract.check(login, "/auth/login"))["access_token"]

    me = await client.get("/auth/me", headers=auth(token))
    assert (await contract.check(me, "/auth/me")) == {"user": user}

    errors = [
        (await client.post("/auth/register", json=credentials), "/auth/register", 409, "email_taken"),
        (await client.post("/auth/register", json={"email": "x", "password": "short"}), "/auth/register", 422,
         "validation_failed"),
        (await client.post("/auth/register", data=b"{oops", headers={"Content-Type": "application/json"}),
         "/auth/register", 400, "invalid_json"),
        (await client.post("/auth/login", json={**credentials, "password": "wrong password"}), "/auth/login", 401,
         "invalid_credentials"),
        (await client.post("/auth/login", json={}), "/auth/login", 422, "validation_failed"),
        (await client.get("/auth/me"), "/auth/me", 401, "unauthorized"),
        (await client.get("/auth/me", headers=auth("not.a.jwt")), "/auth/me", 401, "invalid_token"),
    ]
    for response, path, status, code in errors:
        assert response.status == status, (path, await response.text())
        assert (await contract.check(response, path))["error"]["code"] == code

    logout = await client.post("/auth/logout-all", headers=auth(token))
    assert logout.status == 204
    await contract.check(logout, "/auth/logout-all")
    revoked = await client.get("/auth/me", headers=auth(token))
    assert revoked.status == 401
    await contract.check(revoked, "/auth/me")


async def test_limits_conform(make_client, contract):
    client = await make_client(login_failures_limit=1)
    wrong = {"email": "ann@example.com", "password": "wrong password"}
    assert (await client.post("/auth/login", json=wrong)).status == 401
    limited = await client.post("/auth/login", json=wrong)
    assert limited.status == 429
    assert (await contract.check(limited, "/auth/login"))["error"]["code"] == "rate_limited"

    too_large = await client.post(
        "/auth/register", data=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert too_large.status == 413
    assert (await contract.check(too_large, "/auth/register"))["error"]["code"] == "too_large"


async def test_video_answers_conform(client, register, clips, contract):
    _, token = await register()
    _, other_token = await register()

    uploaded = await client.post("/videos/upload", data=upload_form(clips["mp4"], "Sunset"), headers=auth(token))
    assert uploaded.status == 201, await uploaded.text()
    video = (await contract.check(uploaded, "/videos/upload"))["video"]
    one = f"/videos/{video['id']}"

    feed = await client.get("/videos", params={"limit": "1"})
    assert (await contract.check(feed, "/videos"))["items"] == [video]
    single = await client.get(one)
    assert (await contract.check(single, "/videos/{id}"))["video"] == video
    views = await client.get(f"{one}/views")
    assert (await contract.check(views, "/videos/{id}/views")) == {"video_id": video["id"], "views": 0}
    report = await client.post(f"{one}/views")
    assert (await contract.check(report, "/videos/{id}/views"))["counted"] is False
    poster = await client.get(video["thumbnail_url"])
    assert poster.status == 200
    await contract.check(poster, "/videos/{id}/thumbnail")

    errors = [
        (await client.post("/videos/upload", data=upload_form(clips["mp4"]), headers=auth(other_token + "x")),
         "/videos/upload", "post", 401),
        (await client.post("/videos/upload", data=b"plain", headers={**auth(token), "Content-Type": "text/plain"}),
         "/videos/upload", "post", 400),
        (await client.post("/videos/upload", data=upload_form(clips["mp4"], title=None), headers=auth(token)),
         "/videos/upload", "post", 422),
        (await client.post("/videos/upload", data=upload_form(clips["text"]), headers=auth(token)),
         "/videos/upload", "post", 415),
        (await client.get("/videos", params={"cursor": "garbage!"}), "/videos", "get", 400),
        (await client.get("/videos", params={"limit": "0"}), "/videos", "get", 422),
        (await client.get("/videos/999999"), "/videos/{id}", "get", 404),
        (await client.get("/videos/999999/views"), "/videos/{id}/views", "get", 404),
        (await client.post("/videos/999999/views"), "/videos/{id}/views", "post", 404),
        (await client.get("/videos/999999/thumbnail"), "/videos/{id}/thumbnail", "get", 404),
        (await client.delete(one), "/videos/{id}", "delete", 401),
        (await client.delete(one, headers=auth(other_token)), "/videos/{id}", "delete", 403),
    ]
    for response, path, method, status in errors:
        assert response.status == status, (method, path, await response.text())
        await contract.check(response, path, method)

    deleted = await client.delete(one, headers=auth(token))
    assert deleted.status == 204
    await contract.check(deleted, "/videos/{id}")
    gone = await client.get(one)
    assert gone.status == 404
    await contract.check(gone, "/videos/{id}")


async def test_stream_answers_conform(client, register, upload, clips, contract):
    _, token = await register()
    video = await upload(token, clips["mp4"])
    url, path = video["stream_url"], "/videos/{id}/stream"
    etag = (await client.head(url)).headers["ETag"]
    cases = [
        ({}, 200),
        ({"Range": "bytes=0-1"}, 206),
        ({"Range": "bytes=0-1,10-19"}, 206),  # multipart/byteranges
        ({"If-None-Match": etag}, 304),
        ({"If-Match": '"stale"'}, 412),
        ({"Range": "bytes=99999999-"}, 416),
    ]
    for headers, status in cases:
        for method in ("get", "head"):
            response = await client.request(method.upper(), url, headers=headers)
            assert response.status == status, (method, headers, await response.text())
            await contract.check(response, path, method)


async def test_poster_answers_conform(client, register, upload, clips, contract):
    _, token = await register()
    url = (await upload(token, clips["mp4"]))["thumbnail_url"]
    etag = (await client.head(url)).headers["ETag"]
    cases = [
        ({"Range": "bytes=0-1"}, 200),  # posters are sent whole
        ({"If-None-Match": etag}, 304),
        ({"Range": "bytes=99999999-"}, 200),
    ]
    for headers, status in cases:
        response = await client.get(url, headers=headers)
        assert response.status == status, (headers, await response.text())
        await contract.check(response, "/videos/{id}/thumbnail")


async def test_live_viewer_messages_conform(client, register, upload, clips, contract):
    _, token = await register()
    video = await upload(token, clips["mp4"])
    documented_101, _ = documented_response(contract.spec, "/videos/{id}/active-viewers", "get", 101)
    assert documented_101["x-websocket-messages"]["server"] == {"$ref": "#/components/schemas/ViewerCounts"}

    async with client.ws_connect(f"/videos/{video['id']}/active-viewers", protocols=("bearer", token)) as ws:
        assert ws.protocol == "bearer"
        message = await ws.receive_json(timeout=5)
    contract.validate("/components/schemas/ViewerCounts", message)
    assert message == {"video_id": video["id"], "active_viewers": 1, "views": 0}

    url = f"/videos/{video['id']}/active-viewers"
    refusals = [
        (await client.get(url), 400),  # not an upgrade request
        (await client.get(url, params={"token": "not.a.jwt"}), 401),
        (await client.get(url, headers={"Origin": "https://elsewhere.example"}), 403),
    ]
    for response, status in refusals:
        assert response.status == status, await response.text()
        await contract.check(response, "/videos/{id}/active-viewers")


async def test_service_answers_conform(client, contract):
    for path in ("/healthz", "/readyz"):
        response = await client.get(path)
        assert response.status == 200
        await contract.check(response, path)


async def test_readiness_failure_conforms(make_client, contract):
    # Port 9 (discard) on loopback: nothing listens, so Redis is "down".
    client = await make_client(redis_url="redis://127.0.0.1:9/0")
    response = await client.get("/readyz")
    assert response.status == 503
    body = await contract.check(response, "/readyz")
    assert body["checks"] == {"postgres": "ok", "redis": "unavailable"}


# --- Swagger UI ---------------------------------------------------------------------------------


class Assets(HTMLParser):
    """The scripts and stylesheets a page loads, and any inline code in it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append(f"<{tag}> with inline style or handler")
        if tag == "script":
            self._in_script = True
            if "src" in attrs:
                self.urls.append(attrs["src"])
        elif tag == "link" and attrs.get("rel") in ("stylesheet", "icon"):
            self.urls.append(attrs["href"])
        elif tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(f"<script>{data.strip()[:80]}")


async def test_api_docs_page_is_served_from_own_files(client):
    response = await client.get("/api/docs")
    html = await expect(response, 200)
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]

    assets = Assets()
    assets.feed(html.decode())
    assert assets.inline == [], "the CSP blocks inline code"
    assert any(url.endswith("/swagger-ui-bundle.js") for url in assets.urls)
    assert any(url.endswith("/swagger-ui.css") for url in assets.urls)
    assert 'data-spec-url="/api/openapi.json"' in html.decode()
    for url in assets.urls:
        assert url.startswith("/static/"), f"{url} is not served by this server"
        asset = await client.get(url)
        assert asset.status == 200, url
        await asset.read()


async def test_swagger_init_script_loads_the_served_document(client):
    script = (await expect(await client.get("/static/swagger/init.js"), 200)).decode()
    assert "SwaggerUIBundle(" in script and "specUrl" in script
    assert "http://" not in script and "https://" not in script



def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(chromium() is None, reason="no Chromium (`make browser` installs it)")
async def test_swagger_ui_renders_offline_under_the_csp(client, spec):
    from playwright.async_api import async_playwright

    origin = str(client.make_url("/")).rstrip("/")
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            # Offline: anything not from this server fails, and is reported.
            await page.route(
                "**/*",
                lambda route: route.continue_() if route.request.url.startswith(origin) else route.abort(),
            )
            page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            # CSP violations are reported as console errors.
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            await page.goto(f"{origin}/api/docs")
            await page.wait_for_selector(".opblock", timeout=20_000)
            rendered = await page.locator(".opblock").count()
        finally:
            await browser.close()
    assert problems == []
    assert rendered == len(spec_operations(spec))
