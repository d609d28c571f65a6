"""The built-in live page in real headless Chromium: sign in, charts with data, drill down."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.harness import ROOT, Up, fill_in

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-output"
# Plotly charts whose traces carry at least one point.
CHARTS_WITH_DATA = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(el =>
    (el.data || []).some(t => ((t.values || t.x || []).length > 0))).length"""


def _browser(playwright):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium "
                    "fonts-noto-cjk); the page test drives a real headless browser")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`jiandu up --demo` with the province registered."""
    up = Up(tmp_path_factory.mktemp("page") / "d", demo=True).wait_ready()
    try:
        up.wait_unit("gd", timeout=120)
        yield up
    finally:
        assert up.stop() == 0


def test_page_signs_in_draws_live_charts_and_drills_into_a_child_unit(demo):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(demo.url + "/")
        assert "请在右上角输入访问令牌" in page.inner_text("#welcome")

        page.fill("#token", demo.token)
        page.click("#signin button")
        page.wait_for_function(f"({CHARTS_WITH_DATA})() >= 4", timeout=120_000)
        # The demo stream may not have reached the ledger yet when the charts first draw: wait
        # for the live refresh to show the first petitions rather than reading a racing zero.
        page.wait_for_function(
            "() => { const b = document.querySelector('#panel-1 .card b');"
            " return b && parseInt(b.textContent.replace(/,/g, '')) > 0; }", timeout=120_000)
        assert page.evaluate("localStorage.getItem('jiandu.token')") == demo.token
        assert page.inner_text("nav a.on") == "全省总览"
        assert page.inner_text("#crumbs b") == "广东省纪委监委"
        cards = page.locator("#panel-1 .card b").all_inner_texts()
        assert len(cards) == 6 and int(cards[0].replace(",", "")) > 0
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "page-province.png"), full_page=True)

        # Drill down: click a city in the ranking table; every panel re-renders for it.
        city = page.locator('#panel-6 a[data-unit^="gd.c"]').first
        city_id, city_name = city.get_attribute("data-unit"), city.inner_text()
        city.click()
        page.wait_for_function(
            "name => document.querySelector('#crumbs b')?.textContent === name", arg=city_name)
        assert f"u={city_id}" in page.evaluate("location.hash")
        page.wait_for_function(
            f"id => ({CHARTS_WITH_DATA})() >= 4 && Array.from(document.querySelectorAll("
            f"'#panel-6 a[data-unit]')).every(a => a.dataset.unit.startsWith(id))",
            arg=city_id, timeout=60_000)
        assert page.inner_text("#crumbs a") == "广东省纪委监委"  # the way back up
        page.screenshot(path=str(SCREENSHOTS / "page-drilldown.png"), full_page=True)
        browser.close()
    assert not errors, f"console errors: {errors}"


def test_panel_data_is_403_outside_the_callers_subtree(demo):
    issued = httpx.post(demo.url + "/v1/tokens", json={"unit_id": "gd.c01", "role": "viewer"},
                        headers=demo.headers(), timeout=30)
    issued.raise_for_status()
    viewer = issued.json()["token"]
    panel = demo.url + "/v1/dashboards/jiandu-overview/panels/1"
    own = httpx.get(panel, params={"unit": "gd.c01"}, headers=demo.headers(viewer), timeout=60)
    assert own.status_code == 200 and own.json()["columns"][0] == "受理信访举报"
    for unit in ("gd", "gd.c02"):
        assert httpx.get(panel, params={"unit": unit}, headers=demo.headers(viewer),
                         timeout=60).status_code == 403
    assert httpx.get(panel, params={"unit": "gd"}, timeout=30).status_code == 401
    assert httpx.get(demo.url + "/v1/dashboards/nope/panels/1", params={"unit": "gd"},
                     headers=demo.headers(), timeout=30).status_code == 404


def _signed_in(browser, demo: Up, token: str, errors: list[str]):
    """A page of the demo, signed in with `token`; uncaught script errors go to `errors`."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(demo.url + "/")
    page.fill("#token", token)
    page.click("#signin button")
    page.wait_for_function("() => document.querySelector('#crumbs b')?.textContent.length > 0")
    return page


def _issued(demo: Up, unit: str, role: str) -> str:
    return httpx.post(demo.url + "/v1/tokens", json={"unit_id": unit, "role": role},
                      headers=demo.headers(), timeout=30).json()["token"]


def test_a_clerk_downloads_the_template_and_uploads_it_filled_in(demo, tmp_path):
    """报送文件 on the page: the template comes down; a file with a bad row comes back as a
    table of rows and columns; the corrected file is accepted and reaches the ledger."""
    import datetime as dt

    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = _signed_in(browser, demo, _issued(demo, "gd.c01", "viewer"), errors)
        assert page.locator("#upload-open").is_hidden()  # a viewer neither submits nor audits
        assert page.locator("#verify").is_hidden()
        page.close()

        page = _signed_in(browser, demo, demo.token, errors)
        page.locator("#upload-open").click()
        with page.expect_download() as download:
            page.click("#upload-template")
        template = tmp_path / "模板.xlsx"
        download.value.save_as(template)

        def clue(subject: str, method: str) -> dict[str, object]:
            return {"事件类型": "处置问题线索", "单位": "gd.c01", "对象": subject,
                    "发生时间": dt.datetime(2025, 3, 1, 9, 30), "处置方式": method}

        fill_in(template, [clue("page-clue-1", "谈话函询"), clue("page-clue-2", "约谈")])
        page.set_input_files("#upload-file", str(template))
        page.click("#upload-send")
        page.wait_for_selector("#upload-problems")
        cells = page.locator("#upload-problems tr").nth(1).locator("td").all_inner_texts()
        assert cells[:2] == ["3", "处置方式"] and "约谈" in cells[2]

        fill_in(template, [clue("page-clue-1", "谈话函询"), clue("page-clue-2", "初步核实")])
        page.set_input_files("#upload-file", str(template))
        page.click("#upload-send")
        page.wait_for_selector("#upload-accepted")
        assert page.inner_text("#upload-accepted") == "已接收 2 条事件"
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "page-upload.png"), full_page=True)
        browser.close()
    assert not errors, f"page errors: {errors}"
    for subject in ("page-clue-1", "page-clue-2"):
        deadline = time.monotonic() + 60
        while not (found := httpx.get(demo.url + "/v1/audit/events", params={"subject": subject},
                                      headers=demo.headers(), timeout=30).json()["events"]):
            assert time.monotonic() < deadline, f"{subject} never reached the ledger"
            time.sleep(0.5)
        assert len(found) == 1 and found[0]["type"] == "clue_disposed"


def test_an_auditor_verifies_the_chains_of_the_unit_on_screen(demo):
    """核验账本: the button an auditor (not a viewer) has; it recomputes the chains of the unit
    on screen and its subtree, and shows the fingerprint the API gives for the same chains."""
    from playwright.sync_api import sync_playwright

    auditor = _issued(demo, "gd.c01", "auditor")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = _signed_in(browser, demo, auditor, errors)
        assert page.locator("#upload-open").is_hidden()  # an auditor reads; it does not submit
        page.click("#verify")
        page.wait_for_selector("#verified.ok")
        shown = page.inner_text("#verified")
        full = page.get_attribute("#verified", "title").split()[-1]
        browser.close()
    assert not errors, f"page errors: {errors}"
    assert shown.startswith("账本完整：") and full[:16] in shown
    units = int(shown.split("：")[1].split(" 个单位")[0])
    direct = httpx.get(demo.url + "/v1/audit/verify", params={"unit": "gd.c01", "subtree": "true"},
                       headers=demo.headers(auditor), timeout=60).json()
    assert direct["ok"] and units == direct["units"] > 1  # the city and the units below it
