"""GET/HEAD /videos/{id}/stream against RFC 9110 §13-14, byte for byte."""

import re
from email.utils import formatdate

import pytest

from .conftest import expect


@pytest.fixture
async def media(register, upload, clips):
    _, token = await register()
    video = await upload(token, clips["mp4"])
    return video["stream_url"], clips["mp4"].read_bytes()


def assert_common_headers(response, size=None):
    for header in ("Accept-Ranges", "ETag", "Last-Modified", "Content-Length", "Content-Type"):
        assert header in response.headers, header
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"].startswith('"')


async def test_whole_file(client, media):
    url, data = media
    response = await client.get(url)
    assert await expect(response, 200) == data
    assert_common_headers(response)
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(data)


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-1", 0, 1),  # Safari's first probe
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", None, 500),
        ("bytes=0-999999999", 0, None),  # a last-pos past the end is clipped
        ("BYTES=5-9", 5, 9),  # the unit is case-insensitive
        ("bytes=-99999999", 0, None),  # a suffix longer than the file is the file
    ],
)
async def test_single_ranges(client, media, header, first, last):
    url, data = media
    size = len(data)
    if first is None:
        first, last = size - last, size - 1
    elif last is None:
        last = size - 1
    response = await client.get(url, headers={"Range": header})
    assert await expect(response, 206) == data[first : last + 1]
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(response.headers["Content-Length"]) == last - first + 1
    assert_common_headers(response)


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{bigger}", "bytes=-0", "bytes=99999999999999999999-"])
async def test_unsatisfiable_is_416(client, media, header):
    url, data = media
    size = len(data)
    response = await client.get(url, headers={"Range": header.format(size=size, bigger=size + 10)})
    body = await expect(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert body["error"]["code"] == "range_not_satisfiable"
    assert "Content-Length" in response.headers


@pytest.mark.parametrize(
    "header", ["bytes=abc", "bytes=5-2", "items=0-1", "bytes=", "bytes=-", "bytes=1-2-3", "0-1", "bytes=0x10-20"]
)
async def test_invalid_range_is_ignored(client, media, header):
    url, data = media
    response = await client.get(url, headers={"Range": header})
    assert await expect(response, 200) == data


async def test_several_ranges_are_multipart_byteranges(client, media):
    url, data = media
    size = len(data)
    response = await client.get(url, headers={"Range": "bytes=0-9, 20-29,-5"})
    body = await expect(response, 206)
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert int(response.headers["Content-Length"]) == len(body)
    boundary = content_type.split("boundary=")[1].encode()
    parts = body.split(b"--" + boundary)
    assert parts[-1].strip() == b"--"
    found = []
    for part in parts[1:-1]:
        head, _, payload = part.partition(b"\r\n\r\n")
        payload = payload.removesuffix(b"\r\n")
        match = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head)
        first, last, total = map(int, match.groups())
        assert b"Content-Type: video/mp4" in head and total == size
        assert payload == data[first : last + 1]
        found.append((first, last))
    assert found == [(0, 9), (20, 29), (size - 5, size - 1)]


async def test_overlapping_ranges_are_coalesced(client, media):
    url, data = media
    response = await client.get(url, headers={"Range": "bytes=0-50,10-20,51-60"})
    assert await expect(response, 206) == data[0:61]
    assert response.headers["Content-Range"] == f"bytes 0-60/{len(data)}"


async def test_partly_satisfiable_ranges_answer_the_satisfiable_part(client, media):
    url, data = media
    size = len(data)
    response = await client.get(url, headers={"Range": f"bytes=0-3,{size + 5}-{size + 9}"})
    assert await expect(response, 206) == data[0:4]


async def test_if_range(client, media):
    url, data = media
    first = await client.get(url, headers={"Range": "bytes=0-1"})
    await expect(first, 206)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    for validator in (etag, modified):
        response = await client.get(url, headers={"Range": "bytes=2-3", "If-Range": validator})
        assert await expect(response, 206) == data[2:4]
    stale_date = formatdate(0, usegmt=True)
    for stale in ('"some-old-tag"', f"W/{etag}", stale_date):
        response = await client.get(url, headers={"Range": "bytes=2-3", "If-Range": stale})
        assert await expect(response, 200) == data, stale


async def test_conditional_requests(client, media):
    url, data = media
    first = await client.get(url)
    await expect(first, 200)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-None-Match": "*"},
                    {"If-Modified-Since": modified}):
        response = await client.get(url, headers=headers)
        assert await expect(response, 304) == b""
        assert response.headers["ETag"] == etag
    response = await client.get(url, headers={"If-None-Match": '"other"'})
    assert await expect(response, 200) == data

    response = await client.get(url, headers={"If-Match": '"other"'})
    assert (await expect(response, 412))["error"]["code"] == "precondition_failed"
    response = await client.get(url, headers={"If-Match": etag, "Range": "bytes=0-1"})
    assert await expect(response, 206) == data[:2]
    response = await client.get(url, headers={"If-Unmodified-Since": formatdate(0, usegmt=True)})
    await expect(response, 412)


async def test_head_has_the_headers_of_get_and_no_body(client, media):
    url, data = media
    for headers in ({}, {"Range": "bytes=0-1"}, {"Range": "bytes=0-1,5-6"}):
        get = await client.get(url, headers=headers)
        head = await client.head(url, headers=headers)
        assert head.status == get.status
        assert await head.read() == b""
        for name in ("Content-Length", "Content-Range", "ETag", "Last-Modified", "Accept-Ranges"):
            assert head.headers.get(name) == get.headers.get(name), name
        if "boundary" not in get.headers["Content-Type"]:
            assert head.headers["Content-Type"] == get.headers["Content-Type"]
        await get.read()


async def test_large_ranges_go_out_complete(client, register, upload, clips):
    _, token = await register()
    video = await upload(token, clips["long"])
    data = clips["long"].read_bytes()
    assert len(data) > 200_000  # past the small-body path: sendfile does the work
    response = await client.get(video["stream_url"], headers={"Range": f"bytes=1000-{len(data) - 1000}"})
    assert await expect(response, 206) == data[1000 : len(data) - 999]
    response = await client.get(video["stream_url"])
    assert await expect(response, 200) == data


async def test_streaming_does_not_count_a_view(client, media):
    url, _ = media
    video_id = url.split("/")[2]
    for _ in range(3):
        await expect(await client.get(url), 200)
    assert (await expect(await client.get(f"/videos/{video_id}/views"), 200))["views"] == 0


async def test_streamed_answers_carry_the_request_id(client, media):
    url, _ = media
    response = await client.get(url, headers={"X-Request-ID": "trace-12345678"})
    await expect(response, 200)
    assert response.headers["X-Request-ID"] == "trace-12345678"
