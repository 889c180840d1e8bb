import base64

import pytest

from .conftest import expect


async def walk(client, limit):
    """Every page of the feed, following next_cursor."""
    pages, cursor = [], None
    while True:
        query = f"/videos?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = await expect(await client.get(query), 200)
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_feed_is_newest_first_and_pages_cover_everything_once(client, register, upload, clips):
    _, token = await register()
    ids = [(await upload(token, clips["mp4"], title=f"clip {i}"))["id"] for i in range(7)]
    pages = await walk(client, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == list(reversed(ids))

    body = await expect(await client.get("/videos"), 200)
    assert len(body["items"]) == 7 and body["next_cursor"] is None
    item = body["items"][0]
    assert item["title"] == "clip 6" and item["active_viewers"] == 0 and item["author"]["display_name"]


async def test_uploads_between_pages_neither_repeat_nor_skip(client, register, upload, clips):
    _, token = await register()
    old = [(await upload(token, clips["mp4"], title=f"old {i}"))["id"] for i in range(5)]
    first = await expect(await client.get("/videos?limit=2"), 200)
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    new = [(await upload(token, clips["mp4"], title=f"new {i}"))["id"] for i in range(3)]
    while cursor:
        body = await expect(await client.get(f"/videos?limit=2&cursor={cursor}"), 200)
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
    assert seen == list(reversed(old))
    assert not set(new) & set(seen)


async def test_empty_feed(client):
    assert await expect(await client.get("/videos"), 200) == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "bm90LWEtY3Vyc29y",  # base64 of "not-a-cursor"
        base64.urlsafe_b64encode(b"v1:abc:1").decode(),
        base64.urlsafe_b64encode(b"v2:1:1").decode(),
        base64.urlsafe_b64encode(b"v1:99999999999999999999999:1").decode(),
        "' OR 1=1 --",
    ],
)
async def test_garbled_cursor_is_400(client, cursor):
    body = await expect(await client.get("/videos", params={"cursor": cursor}), 400)
    assert body["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", ""])
async def test_limit_out_of_range_is_422(client, limit):
    body = await expect(await client.get("/videos", params={"limit": limit}), 422)
    assert "limit" in body["error"]["fields"]
