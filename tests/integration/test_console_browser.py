"""The web console in a real browser: headless Chromium (Debian's, driven by its ChromeDriver)
signs in, plans and submits a change set, watches the request succeed, opens its timeline, and
reads why another request failed. Each step leaves a screenshot under the run's artifacts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.dns_helpers import served, texts
from tests.support import (
    DOWN_ZONE,
    STALE_ZONE,
    TEST_RUN_DIR,
    ZONE,
    Bind,
    Process,
    unavailable,
    unique_label,
    wait_for_terminal,
)

pytestmark = pytest.mark.usefixtures("stack")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = TEST_RUN_DIR / "artifacts" / "console"
WAIT_S = 30


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium at a laptop's size, with a profile of its own and no calls home."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        unavailable("Chromium and ChromeDriver (Debian packages chromium, chromium-driver)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="hostmaster-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1366,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to read CSP and script errors
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        shutil.rmtree(profile, ignore_errors=True)
        raise AssertionError(f"Chromium did not start: {exc.msg}") from exc
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def snap(driver: webdriver.Chrome, name: str) -> None:
    """A screenshot of the whole page, kept as a test artifact."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1366, max(900, min(int(height), 4000)))
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(1366, 900)


def find(driver: webdriver.Chrome, css: str) -> WebElement:
    return WebDriverWait(driver, WAIT_S).until(seen.visibility_of_element_located((By.CSS_SELECTOR, css)))


def sign_in(driver: webdriver.Chrome, api: Process, key: str, page: str = "/ui/requests") -> None:
    driver.delete_all_cookies()
    driver.get(api.url + page)
    field = find(driver, "#key")  # no session: the console asks for a key first
    assert driver.current_url.startswith(api.url + "/ui/signin")
    field.send_keys(key)
    find(driver, "form[action='/ui/signin'] button[type=submit]").click()
    WebDriverWait(driver, WAIT_S).until(seen.url_to_be(api.url + page))


def fill_row(driver: webdriver.Chrome, row: int, op: str, name: str, rtype: str, ttl: str, values: str) -> None:
    Select(find(driver, f"#op-{row}")).select_by_visible_text(op)
    for field, text in (("name", name), ("type", rtype), ("ttl", ttl), ("values", values)):
        element = find(driver, f"#{field}-{row}")
        element.clear()
        element.send_keys(text)


def status_of(driver: webdriver.Chrome) -> str:
    """The request's status as shown, read in one step: the page may redraw itself at any moment."""
    shown = driver.execute_script("const s = document.querySelector('dl.facts .status'); return s && s.textContent;")
    return str(shown or "").strip()


def test_sign_in_plan_submit_and_watch_the_request_succeed(
    browser: webdriver.Chrome, api: Process, admin_key: str, client: httpx.Client, bind: Bind
) -> None:
    browser.get(api.url + "/ui/signin")
    snap(browser, "01-sign-in")
    sign_in(browser, api, admin_key, page=f"/ui/zones/{ZONE}")
    name = f"{unique_label('web')}.{ZONE}"

    fill_row(browser, 1, "upsert", name, "A", "300", "192.0.2.41\n192.0.2.42")
    find(browser, "button[value=plan]").click()
    plan = find(browser, "#plan")
    assert "create" in plan.text
    assert f"{name}." in plan.text
    assert "192.0.2.41, 192.0.2.42" in plan.text
    snap(browser, "02-dry-run-plan")
    assert client.get(f"/api/v1/records/{name}/A").status_code == 404  # a dry run changes nothing

    find(browser, "button[value=apply]").click()
    WebDriverWait(browser, WAIT_S).until(seen.url_contains("/ui/requests/"))
    request_id = browser.current_url.split("#")[0].rsplit("/", 1)[1]
    # The page refreshes itself until the request ends: no reload here.
    WebDriverWait(browser, WAIT_S).until(lambda driver: status_of(driver) == "succeeded")
    steps = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, ".timeline tbody th")]
    assert steps[0] == "received"
    assert steps[-1] == "succeeded"
    assert {"queued", "started", "dns sent", "dns verified"} <= set(steps)
    bars = browser.find_elements(By.CSS_SELECTOR, ".timeline tbody svg rect.mark")
    assert len(bars) == len(steps)
    assert float(bars[-1].get_attribute("x") or 0) > float(bars[0].get_attribute("x") or 0)  # drawn to scale
    assert request_id in find(browser, "dl.facts").text  # the id to find its log lines by
    second_tick = find(browser, ".timeline .ticks span:nth-child(2)")
    assert second_tick.value_of_css_property("left") not in ("auto", "0px")  # placed by the script
    snap(browser, "03-request-timeline")
    assert sorted(texts(served(bind, name, "A"))) == ["192.0.2.41", "192.0.2.42"]

    browser.get(api.url + f"/ui/zones/{ZONE}")
    row = find(browser, f"a[href='/ui/requests/{request_id}']").find_element(By.XPATH, "./ancestor::tr")
    assert "active" in row.text
    assert "192.0.2.41, 192.0.2.42" in row.text


def test_a_failed_request_shows_why(browser: webdriver.Chrome, api: Process, admin_key: str) -> None:
    sign_in(browser, api, admin_key, page=f"/ui/zones/{STALE_ZONE}")
    name = f"{unique_label('fails')}.{STALE_ZONE}"  # our copy of the zone's TSIG secret is wrong

    fill_row(browser, 1, "create", name, "TXT", "", '"from the console"')
    find(browser, "button[value=apply]").click()
    WebDriverWait(browser, WAIT_S).until(lambda driver: status_of(driver) == "failed")
    why = find(browser, "dl.facts dd.error").text
    assert "tsig" in why.lower() or "notauth" in why.lower(), why
    trouble = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, ".timeline tr.trouble th")]
    assert trouble
    assert trouble[-1] == "failed"
    snap(browser, "04-failed-request")

    request_id = browser.current_url.split("#")[0].rsplit("/", 1)[1]
    browser.get(api.url + f"/ui/requests?status=failed&zone={STALE_ZONE}")
    row = find(browser, f"#requests a[href='/ui/requests/{request_id}']").find_element(By.XPATH, "./ancestor::tr")
    assert "failed" in row.text
    assert why in row.text
    snap(browser, "05-requests-failed")


def test_a_refused_change_set_names_the_row_and_is_tracked(
    browser: webdriver.Chrome, api: Process, admin_key: str
) -> None:
    sign_in(browser, api, admin_key, page=f"/ui/zones/{ZONE}")
    find(browser, "[data-add-row]").click()  # the script adds a fourth row
    fill_row(browser, 4, "upsert", f"bad.{ZONE}", "AAAA", "", "2001:db8::zz")
    find(browser, "button[value=apply]").click()

    problems = find(browser, "#problems")
    assert find(browser, "#values-4").get_attribute("value") == "2001:db8::zz"  # the row it names, where it was
    assert "row 4, values[0]" in problems.text
    assert "2001:db8::zz" in problems.text
    snap(browser, "06-refused-change-set")
    problems.find_element(By.CSS_SELECTOR, "a").click()
    WebDriverWait(browser, WAIT_S).until(lambda driver: status_of(driver) == "rejected")
    assert "2001:db8::zz" in find(browser, "dl.facts dd.error").text


def test_health_lists_a_dead_letter_with_its_reason_and_redrives_it(
    browser: webdriver.Chrome, api: Process, admin_key: str, client: httpx.Client, bind: Bind
) -> None:
    name = f"{unique_label('dlq')}.{DOWN_ZONE}"  # down.test's primary is a closed port: retries run out
    answer = client.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.91"]})
    request_id = answer.json()["request_id"]
    assert wait_for_terminal(client, request_id, timeout=60)["error_code"] == "retries_exhausted"
    sign_in(browser, api, admin_key, page="/ui/health")

    def dead_letter_row(driver: webdriver.Chrome) -> WebElement | None:
        driver.refresh()  # the message reaches the dead-letter queue a moment after the request fails
        links = driver.find_elements(By.CSS_SELECTOR, f"#dlq ~ table a[href='/ui/requests/{request_id}']")
        return links[0].find_element(By.XPATH, "./ancestor::tr") if links else None

    row = WebDriverWait(browser, WAIT_S, poll_frequency=1).until(dead_letter_row)
    assert row is not None
    assert "retries_exhausted" in row.text
    assert find(browser, ".chart svg rect")  # the requests of this session, by hour
    assert browser.find_element(By.LINK_TEXT, "RabbitMQ management UI").get_attribute("href")
    snap(browser, "07-health")

    zone = client.get(f"/api/v1/zones/{DOWN_ZONE}").json()
    client.patch(f"/api/v1/zones/{DOWN_ZONE}", json={"primary_port": bind.port})  # the server is back
    try:
        row.find_element(By.CSS_SELECTOR, "button").click()
        assert "Re-drove 1 message" in find(browser, ".notice").text
        browser.get(api.url + f"/ui/requests/{request_id}")
        WebDriverWait(browser, WAIT_S).until(lambda driver: status_of(driver) == "succeeded")
    finally:
        client.patch(f"/api/v1/zones/{DOWN_ZONE}", json={"primary_port": zone["primary_port"]})
    steps = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, ".timeline tbody th")]
    assert steps.index("dead lettered") < steps.index("redriven") < steps.index("succeeded")
    assert texts(served(bind, name, "A")) == ["192.0.2.91"]


def test_no_page_broke_the_content_security_policy_or_threw(browser: webdriver.Chrome) -> None:
    """Runs after the others: the browser's console holds no CSP refusal and no script error."""
    logged = browser.get_log("browser")  # type: ignore[no-untyped-call]
    # A page answered 4xx on purpose (a refused change set) is logged as "network": not a fault of the page.
    problems = [entry["message"] for entry in logged if entry["level"] == "SEVERE" and entry["source"] != "network"]
    assert problems == []


def test_keyboard_alone_signs_in(browser: webdriver.Chrome, api: Process, admin_key: str) -> None:
    browser.delete_all_cookies()
    browser.get(api.url + "/ui/zones")
    field = find(browser, "#key")
    assert browser.switch_to.active_element == field  # focus starts in the key field
    field.send_keys(admin_key + Keys.ENTER)
    WebDriverWait(browser, WAIT_S).until(seen.url_to_be(api.url + "/ui/zones"))
    assert find(browser, "table caption").text.startswith("The zones this key may read")
