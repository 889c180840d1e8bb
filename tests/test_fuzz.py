"""Schemathesis against a real server process with real PostgreSQL and Redis:
generated requests for every operation of the OpenAPI document; none may
answer 5xx, and every answer must conform to the document."""

import json
import os
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from minitube.openapi import SPEC_PATH

from .conftest import TEST_SECRET, _clean
from .servers import ServerProcess

pytestmark = pytest.mark.multiprocess

EXAMPLES = int(os.environ.get("MINITUBE_FUZZ_EXAMPLES", "25"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]

schema = schemathesis.openapi.from_dict(json.loads(SPEC_PATH.read_text()))
# The WebSocket route is an upgrade, not a request/response operation.
schema = schema.exclude(path="/videos/{id}/active-viewers")
generated = {"requests": 0}


@pytest.fixture(scope="module")
def live(services, tmp_path_factory, clips):
    _clean(services)
    folder = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(
        "serve",
        {
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "MINITUBE_ENV": "development",
            "MINITUBE_SECRET_KEY": TEST_SECRET,
            "MINITUBE_STORAGE_DIR": str(folder / "storage"),
            "MINITUBE_ARGON2_MEMORY_KIB": "1024",
            "MINITUBE_ARGON2_TIME_COST": "1",
            "MINITUBE_UPLOADS_PER_ADDRESS": "100000",
            "MINITUBE_REGISTRATIONS_PER_ADDRESS": "100000",
        },
        folder / "server.log",
    ).start()
    token = _seed(server.url, clips["mp4"])
    yield server, token
    server.stop()
    print(f"\nschemathesis sent {generated['requests']} generated requests")


def _post_json(url, body, headers=None):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def _seed(base, clip):
    """A user and a video, so that ids 1 exist for the generated requests to find."""
    _post_json(f"{base}/auth/register", {"email": "fuzz@example.com", "password": "correct horse"})
    token = _post_json(f"{base}/auth/login", {"email": "fuzz@example.com", "password": "correct horse"})["access_token"]
    boundary = "fuzzboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nseed\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
        "Content-Type: video/mp4\r\n\r\n"
    ).encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base}/videos/upload", body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
    return token


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_document(case, live):
    server, token = live
    if case.operation.method.upper() == "DELETE":
        # Keep the seeded video: deleting is exercised by the other tests.
        case.headers = {**(case.headers or {}), "Authorization": "Bearer not-a-token"}
    elif "Authorization" not in (case.headers or {}):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    generated["requests"] += 1
    case.call_and_validate(base_url=server.url, checks=CHECKS)
