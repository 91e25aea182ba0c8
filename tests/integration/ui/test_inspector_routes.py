"""The inspector's routes in-process (TestClient): login, cookies, CSRF, CSP, escaping, pages.

The browser tests (tests/e2e/test_inspector_browser.py) drive the same pages in Chromium.
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from api.ui.app import CSP
from memsvc.service import MemoryService
from tests.conftest import ADMIN_KEY, TenantKey
from tests.integration.ui.hostile import (
    ATTR_TEXT,
    ENTITY_NAME,
    IMG_TEXT,
    META_VALUE,
    SCRIPT_TEXT,
    Seeded,
    seed,
)

PAGES = ["/ui/", "/ui/timeline?user_id=ann", "/ui/recall?q=dog&user_id=ann", "/ui/graph",
         "/ui/jobs", "/ui/kv"]  # fmt: skip


def _text(value: str) -> str:
    """How the templates write ``value``: escaped (``"`` as ``&#34;``)."""
    return str(escape(value))


def _login_token(client: TestClient) -> str:
    page = client.get("/ui/login")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page_html).group(1)


def login(client: TestClient, key: str) -> str:
    """Log in; returns the session's CSRF token (from a page's form)."""
    answer = client.post(
        "/ui/login", data={"api_key": key, "csrf": _login_token(client)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return _csrf(client.get("/ui/").text)


@pytest.fixture
def seeded(service: MemoryService, tenant: TenantKey) -> Seeded:
    return seed(service, tenant.tenant_id)


def test_pages_need_a_login(client: TestClient) -> None:
    for path in [*PAGES, "/ui/memories/x"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login", path
        assert answer.headers["content-security-policy"] == CSP


def test_login_sets_a_strict_http_only_cookie_and_logout_clears_it(
    client: TestClient, tenant: TenantKey
) -> None:
    token = _login_token(client)
    answer = client.post(
        "/ui/login", data={"api_key": tenant.key, "csrf": token}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("memsvc_ui_key"))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/ui"} <= flags, cookie
    page = client.get("/ui/")
    assert page.status_code == 200 and tenant.tenant_id in page.text
    out = client.post("/ui/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_wrong_admin_and_other_keys_are_refused(client: TestClient) -> None:
    for key, status in [("msk_not-a-key", 401), (ADMIN_KEY, 403), ("", 401)]:
        token = _login_token(client)
        answer = client.post("/ui/login", data={"api_key": key, "csrf": token})
        assert answer.status_code == status, key
        assert "memsvc_ui_key" not in client.cookies
    # a forged cookie is no session either
    client.cookies.set("memsvc_ui_key", "msk_forged", path="/ui")
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/login"


def test_login_without_its_csrf_token_is_refused(client: TestClient, tenant: TenantKey) -> None:
    _login_token(client)
    answer = client.post("/ui/login", data={"api_key": tenant.key, "csrf": "forged"})
    assert answer.status_code == 403
    client.cookies.clear()  # no login cookie at all (a cross-site form)
    answer = client.post("/ui/login", data={"api_key": tenant.key, "csrf": "x" * 43})
    assert answer.status_code == 403 and "memsvc_ui_key" not in client.cookies


def test_every_page_renders_with_the_csp(
    client: TestClient, tenant: TenantKey, seeded: Seeded
) -> None:
    login(client, tenant.key)
    paths = [*PAGES, f"/ui/memories/{seeded.fact_id}", f"/ui/graph/entities/{seeded.entity_id}",
             f"/ui/memories/{seeded.plain_id}/delete", "/ui/static/inspector.css",
             "/ui/memories/nope", "/ui/nowhere"]  # fmt: skip
    for path in paths:
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        expected = 404 if path in ("/ui/memories/nope", "/ui/nowhere") else 200
        assert answer.status_code == expected, (path, answer.text[:500])
        assert "<script" not in answer.text.lower(), path  # the inspector ships no script


def test_markup_in_memories_metadata_and_entities_is_escaped(
    client: TestClient, tenant: TenantKey, seeded: Seeded
) -> None:
    login(client, tenant.key)
    pages = {
        "timeline": client.get("/ui/timeline", params={"user_id": "ann"}).text,
        "memory": client.get(f"/ui/memories/{seeded.hostile_id}").text,
        "recall": client.get("/ui/recall", params={"q": "tea", "user_id": "ann"}).text,
        "graph": client.get("/ui/graph", params={"user_id": "ann"}).text,
        "entity": client.get(f"/ui/graph/entities/{seeded.entity_id}").text,
    }
    for name, page in pages.items():
        for raw in ("<script", "<img", "<svg onload", "<i>Zed", "<b>tea"):
            assert raw not in page, (name, raw)
    assert _text(SCRIPT_TEXT) in pages["timeline"]
    assert _text(ATTR_TEXT) in pages["memory"] and _text(IMG_TEXT) in pages["memory"]
    assert _text(json.dumps(META_VALUE)) in pages["memory"]  # metadata, shown as JSON text
    assert _text(META_VALUE) in pages["timeline"]
    assert _text(ENTITY_NAME) in pages["graph"]
    assert _text(ENTITY_NAME) in pages["entity"]


def test_search_box_input_is_escaped_too(client: TestClient, tenant: TenantKey) -> None:
    login(client, tenant.key)
    page = client.get("/ui/recall", params={"q": '"><script>alert(9)</script>'}).text
    assert "<script>alert(9)" not in page and "&#34;&gt;&lt;script&gt;" in page


def test_delete_and_restore_need_the_csrf_token(
    client: TestClient, tenant: TenantKey, seeded: Seeded, service: MemoryService
) -> None:
    csrf = login(client, tenant.key)
    t = tenant.tenant_id
    for data in ({}, {"csrf": "0" * 64}, {"csrf": csrf + "0"}):
        refused = client.post(f"/ui/memories/{seeded.plain_id}/delete", data=data)
        assert refused.status_code == 403
    assert service.memories.get(t, seeded.plain_id)  # still there

    confirm = client.get(f"/ui/memories/{seeded.plain_id}/delete")
    assert "Yes, delete" in confirm.text and _csrf(confirm.text) == csrf
    done = client.post(
        f"/ui/memories/{seeded.plain_id}/delete", data={"csrf": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "was deleted" in page and "DELETE" in page
    assert seeded.plain_id not in client.get("/ui/timeline", params={"user_id": "ann"}).text

    assert service.memories.get(t, seeded.archived_id).archived_at is not None
    done = client.post(f"/ui/memories/{seeded.archived_id}/restore", data={"csrf": csrf})
    assert done.status_code == 200 and "RESTORE" in done.text
    assert service.memories.get(t, seeded.archived_id).archived_at is None


def test_pages_answer_what_they_promise(
    client: TestClient, tenant: TenantKey, seeded: Seeded
) -> None:
    login(client, tenant.key)
    scopes = client.get("/ui/").text
    assert re.search(
        r">ann</a></td>\s*<td class=\"num\">\d+</td>\s*<td class=\"num\">1</td>", scopes
    )
    assert "consolidated" in scopes  # the session's state
    memory = client.get(f"/ui/memories/{seeded.fact_id}").text
    assert "My dog is named Rex." in memory and 'class="source"' in memory  # its source turn
    archived = client.get("/ui/timeline", params={"user_id": "ann", "state": "archived"}).text
    assert "locker code" in archived and "flowerpot" not in archived
    by_meta = client.get(
        "/ui/timeline", params={"user_id": "ann", "meta_key": "stars", "meta_value": "5"}
    ).text
    assert "prefers" in by_meta and "flowerpot" not in by_meta
    bad = client.get("/ui/timeline", params={"user_id": "ann", "kind": "nonsense"})
    assert bad.status_code == 400 and "kind" in bad.text
    recall = client.get("/ui/recall", params={"q": "dog named Rex", "user_id": "ann"}).text
    first = recall.split('<tr class="result">')[1]
    assert "Rex" in first and re.search(r'class="num fused"><strong>[01]\.\d{3}', first)
    assert re.search(r'class="num lexical">\d+\.\d{3}', first)
    assert "Rex" in recall.split('class="context-block">')[1]
    entity = client.get(f"/ui/graph/entities/{seeded.entity_id}").text
    assert "Ann likes" in entity or "jazz" in entity.lower()
    jobs = client.get("/ui/jobs").text
    assert "close" in jobs and "succeeded" in jobs


def test_another_tenants_memory_is_not_found(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey, seeded: Seeded
) -> None:
    csrf = login(client, other_tenant.key)
    assert client.get(f"/ui/memories/{seeded.fact_id}").status_code == 404
    assert client.get(f"/ui/graph/entities/{seeded.entity_id}").status_code == 404
    answer = client.post(f"/ui/memories/{seeded.fact_id}/delete", data={"csrf": csrf})
    assert answer.status_code == 404
    assert "ann" not in client.get("/ui/").text
