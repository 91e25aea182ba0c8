"""The inspector in a real browser: Debian's Chromium driven by Playwright, against the API
served by uvicorn on loopback (in a thread of this process, over the test's own service, so
the test can seed and check through the service directly).

Chromium is required: without ``/usr/bin/chromium`` (``apt-get install chromium``; .ci/run
installs it) these tests fail, they never skip. Screenshots of every page are written to
``$MEMSVC_SCREENSHOT_DIR`` (default ``tests/.artifacts/screenshots``, ignored by git).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.service import MemoryService
from tests.conftest import ADMIN_KEY, make_settings, new_tenant
from tests.e2e.conftest import free_port
from tests.integration.kv.crafted import FP
from tests.integration.ui.hostile import (
    ATTR_TEXT,
    ENTITY_NAME,
    IMG_TEXT,
    META_VALUE,
    SCRIPT_TEXT,
    Seeded,
    seed,
)

CHROMIUM = os.environ.get("MEMSVC_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("MEMSVC_SCREENSHOT_DIR") or ROOT / "tests/.artifacts/screenshots")


class Server:
    def __init__(self, service: MemoryService) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(service.settings, service=service),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _store_a_cartridge(service: MemoryService, tenant_id: str) -> None:
    """A small 4-bit cartridge, so the KV page has a row to show."""
    import torch

    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import QuantSpec

    g = torch.Generator().manual_seed(0)
    layers = [
        (torch.randn(1, 2, 128, 16, generator=g), torch.randn(1, 2, 128, 16, generator=g))
        for _ in range(FP.num_layers)
    ]
    origin = {"kind": "cartridge", "corpus_id": "handbook"}
    container = KVContainer.build(layers, FP, spec=QuantSpec(group_size=32), origin=origin)
    service.kv.save_cartridge(tenant_id, container, name="handbook-4bit")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Seeded, str]]:
    """A service over SQLite with a seeded tenant, served by uvicorn."""
    tmp = tmp_path_factory.mktemp("inspector")
    service = build_service(make_settings(tmp / "data", f"sqlite:///{tmp / 'memsvc.db'}"))
    try:
        tenant = new_tenant(service, "ui")
        seeded = seed(service, tenant.tenant_id)
        _store_a_cartridge(service, tenant.tenant_id)
        with Server(service) as server:
            yield server, seeded, tenant.key
    finally:
        service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is required for the inspector's browser tests and {CHROMIUM} is missing "
            "(apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose page records every dialog opened."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    yield page
    assert page.dialogs == [], f"a dialog fired: {page.dialogs}"  # type: ignore[attr-defined]
    context.close()


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def log_in(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/ui/")
    expect(page).to_have_url(f"{url}/ui/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/ui/")


def test_wrong_key_and_admin_key_are_refused(stack, page: Page) -> None:
    server, _, _ = stack
    page.goto(f"{server.url}/ui/login")
    shot(page, "login")
    page.get_by_label("API key").fill("msk_wrong-key")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not a valid tenant key")
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("admin key has no tenant data")
    assert [c for c in page.context.cookies() if c["name"] == "memsvc_ui_key"] == []


def test_login_cookie_is_http_only_and_strict(stack, page: Page) -> None:
    server, _, key = stack
    log_in(page, server.url, key)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "memsvc_ui_key"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    answer = page.request.get(f"{server.url}/ui/")
    assert "script-src 'none'" in answer.headers["content-security-policy"]
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/ui/login")


def test_browse_a_scope_and_a_memory(stack, page: Page) -> None:
    server, _, key = stack
    log_in(page, server.url, key)
    users = page.locator("section", has=page.get_by_role("heading", name="Users"))
    expect(users.get_by_role("link", name="ann", exact=True)).to_be_visible()
    shot(page, "scopes")
    users.get_by_role("link", name="ann", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Timeline"))).to_be_visible()
    expect(page.get_by_role("link", name="Ann's dog is named Rex.", exact=True)).to_be_visible()
    shot(page, "timeline")
    page.get_by_role("link", name="Ann's dog is named Rex.", exact=True).click()
    expect(page.locator(".conversation li.source")).to_contain_text("My dog is named Rex.")
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    shot(page, "memory")
    page.goto(f"{server.url}/ui/jobs")
    expect(page.locator("table.jobs")).to_contain_text("succeeded")
    shot(page, "jobs")
    page.goto(f"{server.url}/ui/kv")
    row = page.locator("table.kv tbody tr", has_text="handbook-4bit")
    expect(row).to_contain_text("kvquant")
    expect(row).to_contain_text(FP.id)  # the model fingerprint
    expect(row.locator("td.num").first).to_have_text(re.compile(r"\d\.\d\d"))  # bits/element
    shot(page, "kv")


def test_a_query_shows_the_top_result_with_its_scores(stack, page: Page) -> None:
    server, _, key = stack
    log_in(page, server.url, key)
    page.locator("header nav").get_by_role("link", name="Recall").click()
    page.get_by_label("query", exact=True).fill("dog named Rex")
    page.get_by_label("user", exact=True).fill("ann")
    page.get_by_label("token budget").fill("256")
    page.get_by_role("button", name="Search").click()
    top = page.locator("tr.result").first
    expect(top).to_contain_text("Rex")
    for column in ("dense", "lexical", "fused"):
        expect(top.locator(f"td.{column}")).to_have_text(re.compile(r"\d\.\d{3}"))
    expect(top.locator("td.spread")).to_have_text(re.compile(r"\d\.\d{3}"))
    expect(page.locator("pre.context-block")).to_contain_text("Rex")
    shot(page, "recall")
    page.set_viewport_size({"width": 1100, "height": 640})
    shot(page, "recall-readme", full_page=False)  # the README's picture (docs/inspector.png)


def test_open_an_entity_and_see_its_facts(stack, page: Page) -> None:
    server, _, key = stack
    log_in(page, server.url, key)
    page.goto(f"{server.url}/ui/graph?user_id=ann")
    expect(page.locator("svg.graph a.node")).to_have_count(7)
    expect(page.locator("svg.graph g.edge.invalidated")).to_have_count(1)  # lives_in Oslo
    shot(page, "graph")
    page.locator("svg.graph a.node", has_text="Oslo").click()
    expect(page.get_by_role("heading", name=re.compile("Oslo"))).to_be_visible()
    fact = page.locator("tr.fact", has_text="Ann lives in Oslo.")
    expect(fact.locator(".badge")).to_have_text("invalidated")
    expect(fact).to_contain_text("2024-03-01 → 2025-06-01")
    changes = page.locator("ol.changes li")  # Ann · lives_in: Oslo, then Bergen
    expect(changes).to_have_count(2)
    expect(changes.first).to_contain_text("Oslo")
    expect(changes.last).to_contain_text("Bergen")
    shot(page, "entity")


def test_delete_and_restore_a_memory(stack, page: Page) -> None:
    server, seeded, key = stack
    log_in(page, server.url, key)
    page.goto(f"{server.url}/ui/memories/{seeded.plain_id}")
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_text("Delete this memory?")).to_be_visible()
    shot(page, "confirm-delete")
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text("was deleted")).to_be_visible()
    page.goto(f"{server.url}/ui/timeline?user_id=ann")
    expect(page.get_by_text("flowerpot")).to_have_count(0)

    page.goto(f"{server.url}/ui/memories/{seeded.archived_id}")
    expect(page.locator("h1 .badge.archived")).to_be_visible()
    page.get_by_role("link", name="Restore…").click()
    page.get_by_role("button", name="Yes, restore").click()
    expect(page.locator("h1 .badge.current")).to_be_visible()
    expect(page.locator("table")).to_contain_text("RESTORE")


def test_a_post_without_the_csrf_token_is_refused(stack, page: Page) -> None:
    server, seeded, key = stack
    log_in(page, server.url, key)
    # The browser's own session cookie goes along; only the token is missing.
    url = f"{server.url}/ui/memories/{seeded.fact_id}/delete"
    refused = page.request.post(url, form={"csrf": "forged"})
    assert refused.status == 403
    refused = page.request.post(url, form={})
    assert refused.status == 403
    page.goto(f"{server.url}/ui/memories/{seeded.fact_id}")
    expect(page.locator("blockquote.memory-text")).to_have_text("Ann's dog is named Rex.")


def test_markup_renders_as_text(stack, page: Page) -> None:
    server, seeded, key = stack
    log_in(page, server.url, key)
    page.goto(f"{server.url}/ui/timeline?user_id=ann")
    expect(page.get_by_text(SCRIPT_TEXT, exact=False)).to_be_visible()
    expect(page.locator(".meta").get_by_text(META_VALUE, exact=False)).to_be_visible()
    page.goto(f"{server.url}/ui/memories/{seeded.hostile_id}")
    text = page.locator("blockquote.memory-text")
    expect(text).to_have_text(f"{SCRIPT_TEXT} {ATTR_TEXT} {IMG_TEXT}")
    text.hover()  # an injected onmouseover would fire here
    expect(page.locator("main script, main img, main b, main i")).to_have_count(0)
    shot(page, "xss-memory")
    page.goto(f"{server.url}/ui/graph?user_id=ann")
    expect(page.locator("svg.graph").get_by_text(ENTITY_NAME)).to_be_visible()
    page.goto(f"{server.url}/ui/graph/entities/{seeded.entity_id}")
    expect(page.locator("h1.entity-name")).to_contain_text(ENTITY_NAME)
    expect(page.locator("main script, main img, main i")).to_have_count(0)
    shot(page, "xss-entity")
    assert page.dialogs == []  # type: ignore[attr-defined]  # no alert() ran anywhere
