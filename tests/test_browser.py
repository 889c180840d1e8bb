"""The bundled page, walked in a real Chromium against a real server process.

`python -m minitube serve` runs as a subprocess over the session's PostgreSQL
and Redis (see conftest's `services`); Playwright drives Debian's Chromium at
/usr/bin/chromium (`make browser` installs it) and the module is skipped when
it is missing. Screenshots of the upload in progress, the watch view with two
viewers and the feed land in test-output/screenshots/ at the repository root;
the server's log in test-output/browser-server.log.

Every test opens its own browser contexts and looks only at what a person
would see (the data-testid hooks of the page), plus the HTTP API to seed data
and to cross-check what the page shows.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest

from .servers import ROOT as REPO_ROOT
from .servers import ServerProcess
from .clips import make_clip
from .conftest import _clean

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Chromium at {CHROMIUM} (`make browser` installs Debian's package)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the playwright package (pip install -e '.[test]')"
)
expect = sync_api.expect

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
OUTPUT = REPO_ROOT / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"
PASSWORD = "correct horse battery"
PAGE_SIZE = 12  # what feed.js asks for
SEEDED_VIDEOS = 30
# Upload throttle: ~1.5 MB at 768 KiB/s takes about two seconds, long enough
# to watch the progress bar move, short enough for the time budget.
UPLOAD_BYTES_PER_SECOND = 768 * 1024
MARKUP_TITLE = "<img src=x onerror=alert(1)>"

SERVER_SETTINGS = {
    "MINITUBE_ENV": "development",
    "MINITUBE_SECRET_KEY": "browser-tests-secret-0123456789-0123456789-abcdef",
    "MINITUBE_VIEW_THRESHOLD_SECONDS": "2",
    "MINITUBE_BROADCAST_INTERVAL_SECONDS": "0.1",
    # Cheap hashing keeps registration fast; the default costs are tested elsewhere.
    "MINITUBE_ARGON2_MEMORY_KIB": "1024",
    "MINITUBE_ARGON2_TIME_COST": "1",
    # The seeded feed alone is 30 uploads from 127.0.0.1, the default cap.
    "MINITUBE_UPLOADS_PER_ADDRESS": "1000",
    "MINITUBE_LOG_LEVEL": "INFO",
}


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(services, tmp_path_factory):
    """A real `minitube serve` process over freshly emptied tables and Redis."""
    _clean(services)
    root = tmp_path_factory.mktemp("browser-server")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "MINITUBE_STORAGE_DIR": str(root / "storage"),
        **SERVER_SETTINGS,
    }
    server = ServerProcess("serve", env, OUTPUT / "browser-server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("browser-clips")
    return {
        # 6 s: the page reports a view after half of it (3 s) has played, the
        # server (threshold 2 s) accepts it. 1280x720 makes it ~1.5 MB.
        "watch": make_clip(folder / "Harbour at dawn.mp4", seconds=6, width=1280, height=720),
        "small": make_clip(folder / "tiny.mp4", seconds=1, width=160, height=90),
    }


@pytest.fixture(scope="module")
def pw():
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(pw):
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def api(pw, live_server):
    """Plain HTTP against the server, for seeding and cross-checking."""
    context = pw.request.new_context(base_url=live_server.url)
    yield Api(context)
    context.dispose()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def open_page(browser, live_server):
    """open_page() -> (context, page): a fresh profile (no cookies, no token),
    with uncaught page errors and alert()/confirm() dialogs recorded."""
    contexts = []

    def factory():
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 720})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.problems = []  # uncaught exceptions in the page
        page.dialogs = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))

        def on_dialog(dialog):
            page.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return context, page

    yield factory
    for context in contexts:
        context.close()


class Api:
    def __init__(self, context) -> None:
        self.http = context

    def register(self, email: str, display_name: str | None = None) -> str:
        body = {"email": email, "password": PASSWORD}
        if display_name:
            body["display_name"] = display_name
        response = self.http.post("/auth/register", data=body)
        assert response.status == 201, response.text()
        response = self.http.post("/auth/login", data={"email": email, "password": PASSWORD})
        assert response.status == 200, response.text()
        return response.json()["access_token"]

    def upload(self, token: str, path: Path, title: str) -> dict:
        response = self.http.post(
            "/videos/upload",
            headers={"Authorization": f"Bearer {token}"},
            multipart={"title": title, "file": {"name": path.name, "mimeType": "video/mp4", "buffer": path.read_bytes()}},
        )
        assert response.status == 201, response.text()
        return response.json()["video"]

    def video(self, video_id: int) -> dict:
        response = self.http.get(f"/videos/{video_id}")
        assert response.status == 200, response.text()
        return response.json()["video"]

    def feed_ids(self) -> list[int]:
        """Every video id, newest first, by walking the feed's pages."""
        ids, cursor = [], None
        while True:
            response = self.http.get("/videos", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
            assert response.status == 200, response.text()
            body = response.json()
            ids += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                return ids


@pytest.fixture(scope="module")
def seeded_feed(api, media) -> None:
    """Enough videos for three feed pages, uploaded by someone else."""
    token = api.register("seeder@example.com", "Seeder")
    for n in range(1, SEEDED_VIDEOS + 1):
        api.upload(token, media["small"], f"Seeded clip {n:02d}")


# --- helpers -----------------------------------------------------------------------


def fill_credentials(page, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)


def log_in(page, email: str, display_name: str) -> None:
    page.get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    fill_credentials(page, email)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text(display_name)


def upload_through_form(page, path: Path, title: str) -> None:
    page.get_by_role("link", name="Upload", exact=True).click()
    expect(page).to_have_url(re.compile(r"/upload$"))
    page.get_by_label("Title").fill(title)
    page.get_by_label("Video file").set_input_files(path)
    page.get_by_role("button", name="Upload", exact=True).click()


def watch_id(page) -> int:
    expect(page).to_have_url(re.compile(r"/watch/\d+$"), timeout=30_000)
    return int(page.url.rsplit("/", 1)[1])


def card_ids(page) -> list[int]:
    return [int(v) for v in page.eval_on_selector_all(
        '[data-testid="video-card"]', "cards => cards.map(card => card.dataset.videoId)")]


def assert_no_page_problems(page) -> None:
    assert page.problems == [], f"uncaught errors in the page: {page.problems}"
    assert page.dialogs == [], f"unexpected dialogs: {page.dialogs}"


RECORD_PERCENTS = """() => {
  const el = document.querySelector('[data-testid="upload-percent"]');
  window.__percents = [];
  new MutationObserver(() => window.__percents.push(el.textContent))
    .observe(el, { childList: true, characterData: true, subtree: true });
}"""

PLAY_MUTED = """async () => {
  const video = document.querySelector('[data-testid="player"]');
  video.muted = true;  // muted playback needs no user gesture
  try { await video.play(); return null; } catch (error) { return String(error); }
}"""


# --- tests ---------------------------------------------------------------------------


@pytest.mark.browser
def test_server_field_errors_show_next_to_the_field(api, open_page):
    api.register("taken@example.com")
    _, page = open_page()
    page.goto("/")
    page.get_by_role("link", name="Register").click()
    expect(page).to_have_url(re.compile(r"/register$"))
    # Same address in another case: one account, so the server says 409 email_taken.
    fill_credentials(page, "Taken@Example.com")
    page.get_by_role("button", name="Create account").click()

    email_error = page.get_by_test_id("field-error-email")
    expect(email_error).to_be_visible()
    expect(email_error).to_have_text(re.compile(r"already|registered|taken|exists", re.I))
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    # The error sits with the field, not only in a banner, and nobody got signed in.
    field = page.locator(".field", has=page.get_by_label("Email"))
    expect(field.get_by_test_id("field-error-email")).to_be_visible()
    expect(page.get_by_test_id("field-error-password")).to_be_hidden()
    expect(page.get_by_test_id("current-user")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/register$"))
    assert_no_page_problems(page)


@pytest.mark.browser
def test_register_log_in_upload_watch_with_live_counts(api, open_page, media, screenshots, live_server, seeded_feed):
    context, page = open_page()
    page.goto("/")

    # Register: the new account lands on the feed, signed in.
    page.get_by_role("link", name="Register").click()
    expect(page).to_have_url(re.compile(r"/register$"))
    fill_credentials(page, "alice@example.com")
    page.get_by_label("Display name").fill("Alice")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_test_id("current-user")).to_have_text("Alice")
    expect(page).to_have_url(live_server.url + "/")

    # Log out, and back in.
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("current-user")).to_have_count(0)
    log_in(page, "alice@example.com", "Alice")

    # Upload a ~1.5 MB clip over a throttled uplink and watch the bar move.
    page.get_by_role("link", name="Upload", exact=True).click()
    expect(page).to_have_url(re.compile(r"/upload$"))
    page.evaluate(RECORD_PERCENTS)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_BYTES_PER_SECOND,
    })
    title = "Harbour at dawn"
    page.get_by_label("Title").fill(title)
    page.get_by_label("Video file").set_input_files(media["watch"])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_function(
        """() => { const n = parseInt(document.querySelector('[data-testid="upload-percent"]').textContent, 10);
                   return n >= 25 && n <= 75; }""",
        timeout=20_000,
    )
    progress = page.get_by_test_id("upload-progress")
    expect(progress).to_be_visible()
    bar_value = float(progress.evaluate("el => el.value"))
    page.screenshot(path=screenshots / "upload-in-progress.png", full_page=True)
    assert 0 < bar_value < 100, f"progress bar at {bar_value}"

    video_id = watch_id(page)
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
    })
    cdp.detach()
    percents = [int(text.rstrip("%")) for text in page.evaluate("window.__percents") if text.endswith("%")]
    assert any(0 < n < 100 for n in percents), f"no intermediate percentage shown: {percents}"
    assert len({n for n in percents if 0 < n < 100}) >= 3, f"the bar hardly moved: {percents}"
    assert percents == sorted(percents), f"progress went backwards: {percents}"
    assert percents[-1] == 100, f"progress never reached 100%: {percents}"

    # The watch page of the new video, and it plays.
    expect(page.locator("h1.watch-title")).to_have_text(title)
    player = page.get_by_test_id("player")
    expect(player).to_be_visible()
    assert page.evaluate(PLAY_MUTED) is None
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"player\"]').currentTime > 0.3", timeout=15_000)
    first = player.evaluate("video => video.currentTime")
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=\"player\"]').currentTime > {first + 0.3}", timeout=10_000)
    assert player.evaluate("video => video.error") is None
    watching = page.get_by_test_id("watching-now")
    expect(watching).to_have_text("1")

    # Someone else opens the same video: both pages say 2 watching.
    other_context, other = open_page()
    other.goto(f"/watch/{video_id}")
    expect(other.get_by_test_id("watching-now")).to_have_text("2")
    expect(watching).to_have_text("2")
    page.screenshot(path=screenshots / "watch-two-watching.png", full_page=True)

    # They leave: back to 1.
    other_context.close()
    # (A tab that vanishes without closing its socket would take up to the
    # heartbeat timeout; a closed context closes it at once.)
    expect(watching).to_have_text("1", timeout=15_000)

    # Played past the threshold: one view, on the page and on the server.
    expect(page.get_by_test_id("views-count")).to_have_text("1", timeout=15_000)
    assert api.video(video_id)["views"] == 1

    # The logo leads to a fresh feed with the new video on top of the others.
    assert len(api.feed_ids()) > PAGE_SIZE
    page.get_by_role("link", name="minitube").click()
    expect(page).to_have_url(live_server.url + "/")
    card = page.get_by_test_id("video-card").first
    expect(card).to_have_attribute("data-video-id", str(video_id))
    expect(card.locator(".card-title")).to_have_text(title)
    expect(card).to_contain_text("1 view")
    assert_no_page_problems(page)


@pytest.mark.browser
def test_markup_in_a_title_is_shown_literally(api, open_page, media, live_server):
    api.register("mallory@example.com", "Mallory")
    _, page = open_page()
    page.goto("/")
    log_in(page, "mallory@example.com", "Mallory")
    upload_through_form(page, media["small"], MARKUP_TITLE)
    video_id = watch_id(page)

    expect(page.locator("h1.watch-title")).to_have_text(MARKUP_TITLE)
    assert page.locator("h1.watch-title").evaluate("el => el.textContent") == MARKUP_TITLE
    assert page.locator("h1.watch-title").evaluate("el => el.children.length") == 0

    page.get_by_role("link", name="minitube").click()
    card = page.locator(f'[data-testid="video-card"][data-video-id="{video_id}"]')
    expect(card).to_be_visible()
    assert card.locator(".card-title").evaluate("el => el.textContent") == MARKUP_TITLE
    # No element was made from the title anywhere, and nothing ran.
    assert page.locator('img[src="x"]').count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.evaluate("document.title") == "minitube"
    assert_no_page_problems(page)


@pytest.mark.browser
def test_feed_scrolls_to_the_end_and_back_keeps_the_position(api, open_page, seeded_feed, screenshots, live_server):
    expected = api.feed_ids()
    total = len(expected)
    assert total >= SEEDED_VIDEOS

    _, page = open_page()
    feed_requests = []
    page.on("request", lambda request: feed_requests.append(request.url) if "/videos?" in request.url else None)
    page.goto("/")
    cards = page.get_by_test_id("video-card")
    expect(cards.first).to_be_visible()
    # The page prefetches ahead of the viewport; let that settle first.
    page.wait_for_load_state("networkidle")
    initial = cards.count()
    assert initial % PAGE_SIZE == 0 and initial < total, f"{initial} cards before scrolling, of {total}"
    expect(page.get_by_test_id("feed-end")).to_be_hidden()
    page.screenshot(path=screenshots / "feed.png")

    # Scroll like a person until the end shows; the cards must grow on the way.
    page.mouse.move(640, 400)
    counts = [initial]
    end = page.get_by_test_id("feed-end")
    for _ in range(40):
        if end.is_visible():
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(150)
        counts.append(cards.count())
    expect(end).to_be_visible()
    expect(end).to_have_text(re.compile(r"end", re.I))
    assert max(counts) > initial, f"scrolling loaded nothing: {counts}"
    assert counts == sorted(counts)
    ids = card_ids(page)
    assert len(ids) == len(set(ids)), "a video shows twice"
    assert ids == expected, "the feed's cards differ from the API's pages"
    assert len(feed_requests) == math.ceil(total / PAGE_SIZE), feed_requests
    assert all(f"limit={PAGE_SIZE}" in url for url in feed_requests), feed_requests
    assert all("cursor=" in url for url in feed_requests[1:]), feed_requests
    expect(page.get_by_test_id("feed-loading")).to_be_hidden()

    # Back up a bit, open the card in the middle of the screen, come back.
    page.mouse.wheel(0, -700)
    page.wait_for_timeout(200)
    y = page.evaluate("window.scrollY")
    assert y > 300, f"not scrolled: {y}"
    picked = page.evaluate("""() => {
      const card = document.elementFromPoint(innerWidth / 2 - 100, innerHeight / 2)?.closest('[data-testid="video-card"]');
      return card && { id: card.dataset.videoId, top: card.getBoundingClientRect().top,
                       title: card.querySelector('.card-title').textContent };
    }""")
    assert picked, "no card in the middle of the screen"
    page.locator(f'[data-testid="video-card"][data-video-id="{picked["id"]}"]').click()
    expect(page).to_have_url(re.compile(rf"/watch/{picked['id']}$"))
    expect(page.locator("h1.watch-title")).to_have_text(picked["title"])
    assert page.evaluate("window.scrollY") == 0

    page.go_back()
    expect(page).to_have_url(live_server.url + "/")
    expect(cards).to_have_count(total)  # the kept feed, not a reload from the top
    page.wait_for_function(f"() => Math.abs(window.scrollY - {y}) <= 1", timeout=5_000)
    top = page.locator(f'[data-testid="video-card"][data-video-id="{picked["id"]}"]').evaluate(
        "card => card.getBoundingClientRect().top")
    assert abs(top - picked["top"]) <= 1, f"the card moved from {picked['top']} to {top}"
    # Leaving the watch page closed its live connection: nobody watches now.
    deadline = time.monotonic() + 10
    while api.video(int(picked["id"]))["active_viewers"] != 0:
        assert time.monotonic() < deadline, "the watch page's viewer socket outlived the page"
        page.wait_for_timeout(100)
    assert_no_page_problems(page)


@pytest.mark.browser
def test_deleting_asks_first_and_wrong_addresses_show_not_found(api, open_page, media):
    token = api.register("dora@example.com", "Dora")
    video = api.upload(token, media["small"], "Soon gone")
    _, page = open_page()
    page.goto("/")
    log_in(page, "dora@example.com", "Dora")
    page.goto(f"/watch/{video['id']}")

    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("Delete this video? This cannot be undone.")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_visible()
    assert api.video(video["id"])["id"] == video["id"]  # still there

    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete for good").click()
    expect(page).to_have_url(re.compile(r"/$"))
    assert api.http.get(f"/videos/{video['id']}").status == 404

    response = page.goto(f"/watch/{video['id']}")
    assert response.status == 404
    expect(page.get_by_text("Video not found")).to_be_visible()
    response = page.goto("/no/such/page")
    assert response.status == 404
    assert_no_page_problems(page)
