"""The dashboard and /docs in a real headless browser (Debian's chromium, driven by Playwright).

The page loads under its CSP with no console errors, the budget form returns a plan from the
real optimizer, and a channel named like an XSS payload renders as text. Never skipped: CI
installs chromium (.ci/run); set BAYESMMM_CHROMIUM to use another executable.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.test_service_hardening import running

TOKEN = "browser-test-token"
XSS = '<img src=x onerror="window.__xss=1;alert(1)">'


def chromium_path() -> str:
    path = os.environ.get("BAYESMMM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: `apt-get install -y chromium` (.ci/run does it)"
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Playwright's own browser builds are never downloaded: Debian's chromium, headless
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def url(example_run):
    from bayesmmm.serving.factory import create_app
    from bayesmmm.serving.service import ModelService

    service = ModelService.from_target(example_run)
    app = create_app(service, token=TOKEN)
    with running(app) as base:
        yield base
    app.state.runtime.shutdown()  # the optimizer process the budget form started


def open_page(browser, url: str, path: str):
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(url + path, wait_until="load")
    return page, problems


def test_dashboard_loads_and_plans_a_budget(browser, url):
    page, problems = open_page(browser, url, "/")
    assert page.locator("#roas-table tr").count() == 3  # header + x1, x2
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 3 and all(w > 100 for w in widths), widths
    page.fill("input[name=weeks]", "8")
    page.click("#opt-form button")
    page.wait_for_selector("#opt-table", timeout=120_000)
    cells = page.locator("#opt-table tr td:first-child").all_inner_texts()
    assert sorted(cells) == ["x1", "x2"]
    assert page.locator("#opt-summary").inner_text().startswith("Expected response")
    assert not problems, problems
    page.context.close()


def test_xss_payload_as_a_channel_name_renders_as_text(browser, url):
    page, problems = open_page(browser, url, "/")

    def rename_channel(route):  # the real /optimize answer, with a channel named like an attack
        response = route.fetch()
        data = response.json()
        data["allocation"][0]["channel"] = XSS
        route.fulfill(response=response, json=data)

    page.route("**/optimize", rename_channel)
    page.fill("input[name=weeks]", "8")
    page.click("#opt-form button")
    page.wait_for_selector("#opt-table", timeout=120_000)
    page.wait_for_timeout(300)  # an injected <img src=x> would have failed and fired onerror by now
    assert XSS in page.locator("#opt-table tr td:first-child").all_inner_texts()
    assert page.locator("#opt-result img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert not problems, problems
    # and the page's CSP refuses an inline script outright
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
                  " document.body.append(s); }")  # fmt: skip
    assert page.evaluate("window.__inline") is None
    page.context.close()


def test_docs_load_from_this_server_and_can_authorize(browser, url):
    page, problems = open_page(browser, url, "/docs")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.reload(wait_until="load")
    page.wait_for_selector(".swagger-ui .information-container", timeout=60_000)
    page.wait_for_selector("button.authorize", timeout=10_000)
    assert page.locator(".opblock-summary-path").filter(has_text="/predict").count() >= 1
    assert requests and all(r.startswith(url) for r in requests), requests
    csp_errors = [p for p in problems if "Content Security Policy" in p]
    assert not csp_errors and not problems, problems
    page.context.close()
