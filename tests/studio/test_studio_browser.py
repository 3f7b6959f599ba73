"""Studio in a real browser (Debian's headless chromium through chromium-driver) against a real control plane,
real replicas and the real Envoy front end: sign in with the one-time link, every page at 1280 px and at a phone's
width (screenshots kept in test-artifacts/studio), change a weight and see the split change in the plot once
traffic flows, a rule violation shown inline and nothing changed, a regenerated key refusing the old one, and no
console error on any page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from selenium.webdriver.common.by import By

from modelport import AksEndpoint, AksWebservice, Environment, InferenceConfig, Model, Webservice
from modelport.sdk.webservice import WebserviceError
from tests.conftest import FIXTURES, register_weights
from tests.studio.browser import DESKTOP, PHONE, Browser, artifacts_dir, browser_missing
from tests.traffic import Traffic, answered_by, bearer

if browser_missing() and not os.environ.get("CI"):
    pytest.skip(f"no browser for the Studio tests: {browser_missing()}", allow_module_level=True)

APP = FIXTURES / "deploy_app"
WAIT_MS = 10000
# Chromium logs every answer of status 400 or more as a console error: the tests add the ones they cause on purpose
# (a refused change), and nothing else may appear.
EXPECTED_CONSOLE: list[str] = []


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("studiobrowser")


@pytest.fixture(scope="module")
def endpoint(ws, tmp_path_factory):
    """Endpoint ``shop``: key auth, ``blue`` (default) and ``green`` (0 %), each answering its own name."""
    model = register_weights(ws, tmp_path_factory.mktemp("model"))

    def config(version: str) -> InferenceConfig:
        env = Environment("studio-test-env")
        env.environment_variables = {"APP_VERSION": version}
        return InferenceConfig("score.py", source_directory=APP, environment=env)

    config("blue").environment.register(ws)

    deploy = AksEndpoint.deploy_configuration(num_replicas=1, auth_enabled=True, version_name="blue",
                                              max_request_wait_time=WAIT_MS)
    shop = Model.deploy(ws, "shop", [model], config("blue"), deploy)
    shop.wait_for_deployment(timeout_sec=120)
    shop.create_version("green", inference_config=config("green"), traffic_percentile=0)
    shop.wait_for_deployment(timeout_sec=120)
    return shop


@pytest.fixture(scope="module")
def broken(ws, endpoint):
    """Web service ``broken``: its init() raises, so it is Failed."""
    env = Environment("studio-test-env")
    env.environment_variables = {"FAIL_INIT": "1"}
    service = Model.deploy(ws, "broken", [Model(ws, "echo-model")], InferenceConfig("score.py", source_directory=APP,
                           environment=env), AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False))
    with pytest.raises(WebserviceError, match="init exploded on purpose"):
        service.wait_for_deployment(timeout_sec=60)
    return service


@pytest.fixture(scope="module")
def browser(ws, endpoint):
    """A browser signed in with the one-time link ``modelport studio --no-browser`` prints."""
    printed = subprocess.run([sys.executable, "-m", "modelport.cli.main", "studio", "--no-browser"],
                             cwd=ws._dir.root.parent, capture_output=True, text=True, timeout=60, check=True).stdout
    link = re.search(r"(http://\S+/studio/login\?code=\S+)", printed).group(1)
    with Browser(artifacts_dir("studio")) as opened:
        opened.open(link)
        opened.wait_for(lambda d: d.current_url.endswith("/studio/"), message="the link should sign in")
        opened.base = link.split("/studio/")[0]
        yield opened
        assert [e for e in opened.console_errors() if not any(x in e for x in EXPECTED_CONSOLE)] == []


def text(browser: Browser, selector: str) -> str:
    return browser.driver.find_element(By.CSS_SELECTOR, selector).text


UNLABELLED = """return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
  .map((e) => e.outerHTML);"""


def both_widths(browser: Browser, name: str) -> None:
    """Screenshots of the page at 1280 px and at a phone's width; the page never scrolls sideways on a phone, and
    every control has a label a screen reader can say (keyboard users reach them all: they are native controls)."""
    assert browser.driver.execute_script(UNLABELLED) == [], f"{name}: controls without a label"
    browser.screenshot(f"{name}-1280")
    browser.set_width(*PHONE)
    overflow = browser.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    browser.screenshot(f"{name}-phone")
    browser.set_width(*DESKTOP)
    assert overflow <= 0, f"{name}: the page is {overflow} px wider than a phone's screen"


def test_the_overview_lists_failing_services_first_with_their_reason(browser, endpoint, broken):
    browser.open(f"{browser.base}/studio/")
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "td").text for row in rows] == ["broken", "shop"]
    assert "Failed" in rows[0].text and "init exploded on purpose" in rows[0].text
    assert "Healthy" in rows[1].text


def test_every_page_shows_the_workspace(browser, endpoint):
    pages = {"overview": ("/studio/", ["shop", "endpoints"]),
             "models": ("/studio/models", ["echo-model", "shop", "Download"]),
             "environments": ("/studio/environments", ["studio-test-env", "shop"]),
             "services": ("/studio/services", ["shop", "blue 100%", "green 0%"]),
             "computes": ("/studio/computes", ["local", "this machine"])}
    for name, (path, expected) in pages.items():
        browser.open(browser.base + path)
        body = text(browser, "main")
        for words in expected:
            assert words in body, f"{path} should show {words!r}:\n{body}"
        both_widths(browser, name)
    browser.driver.find_element(By.LINK_TEXT, "Environments").click()
    browser.driver.find_element(By.LINK_TEXT, "studio-test-env").click()
    browser.wait_for(lambda d: "Content hash" in text(browser, "main"))
    assert text(browser, "#build-state") == "Built"
    assert "build of environment studio-test-env" in text(browser, "#build-log")
    both_widths(browser, "environment")


def test_the_endpoint_page_shows_its_versions_and_traffic(browser, endpoint):
    browser.open(f"{browser.base}/studio/services/shop")
    rows = {row.get_attribute("data-version"): row for row in
            browser.driver.find_elements(By.CSS_SELECTOR, "#traffic-form tr[data-version]")}
    assert sorted(rows) == ["blue", "green"]
    assert rows["blue"].find_element(By.CSS_SELECTOR, ".effective").text == "100%"
    assert rows["green"].find_element(By.CSS_SELECTOR, ".effective").text == "0%"
    assert browser.driver.find_element(By.ID, "default-blue").is_selected()
    assert endpoint.scoring_uri in text(browser, "#curl")
    assert "$KEY" in text(browser, "#curl") and endpoint.get_keys()[0] not in browser.driver.page_source
    browser.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-plot="rps"] canvas'),
                     message="the requests plot should be drawn")
    loaded = browser.driver.execute_script("return performance.getEntriesByType('resource').map((r) => r.name)")
    assert loaded and all(url.startswith(f"{browser.base}/studio/") for url in loaded), loaded  # works offline
    both_widths(browser, "endpoint")


def test_a_broken_traffic_rule_is_shown_and_changes_nothing(browser, endpoint, ws):
    before = desired_traffic(ws)
    browser.open(f"{browser.base}/studio/services/shop")
    set_traffic(browser, blue=80, green=50)
    message = browser.wait_for(lambda d: "add up to" in text(browser, "#traffic-message") and
                               text(browser, "#traffic-message"), message="the rule's message should show")
    assert "130" in message and "at most 100" in message
    browser.screenshot("endpoint-rule-violation")
    assert desired_traffic(ws) == before
    refused = "/api/v1/services/shop/traffic - Failed to load resource: the server responded with a status of 400"
    assert [e for e in browser.console_errors() if refused in e], "the refused change should be the 400 logged"
    EXPECTED_CONSOLE.append(refused)


def test_a_changed_weight_shows_in_the_plotted_split_once_traffic_flows(browser, endpoint, ws):
    key = endpoint.get_keys()[0]
    with Traffic(endpoint.scoring_uri, answered_by, threads=2, headers=bearer(key), request_timeout=60) as load:
        browser.open(f"{browser.base}/studio/services/shop")
        browser.wait_for(lambda _: share(browser).get("blue", 0) > 0.95, timeout_s=60,
                         message="all requests should go to blue before the change")
        set_traffic(browser, blue=50, green=50)
        browser.wait_for(lambda d: text(browser, "#traffic-form tr[data-version=green] .effective") == "50%",
                         timeout_s=60, message="the page should show the new split")
        browser.wait_for(lambda _: 0.3 < share(browser).get("green", 0) < 0.7, timeout_s=90,
                         message="the plotted split should show green taking about half the requests")
        legend = text(browser, '[data-plot="rps"] .u-legend')
        assert "blue" in legend and "green" in legend
        browser.driver.execute_script("document.getElementById('plots').scrollIntoView()")
        browser.screenshot("endpoint-split-changed")
    assert load.counts["blue"] > 0 and load.counts["green"] > 0
    assert set(load.counts) <= {"blue", "green"}, load.counts  # no failed request while the weight changed
    assert Webservice(ws, "shop").versions["green"].traffic_percentile == 50


def test_a_regenerated_key_is_shown_and_the_old_one_refused(browser, endpoint):
    old = endpoint.get_keys()[0]
    browser.open(f"{browser.base}/studio/services/shop")
    assert old not in text(browser, "#key-primary")  # masked until revealed
    browser.driver.find_element(By.CSS_SELECTOR, '[data-action="reveal-key"][data-which="primary"]').click()
    browser.wait_for(lambda _: text(browser, "#key-primary") == old, message="Reveal should show the key")
    browser.driver.find_element(By.CSS_SELECTOR, '[data-action="regenerate-key"][data-which="primary"]').click()
    alert = browser.wait_for(lambda d: d.switch_to.alert, message="Regenerate should ask first")
    assert "primary key of shop" in alert.text
    alert.accept()
    browser.wait_for(lambda _: "old one is refused" in text(browser, "#keys-message"), timeout_s=60,
                     message="the new key should be reported")
    new = text(browser, "#key-primary")
    assert new and new != old and new == endpoint.get_keys()[0]
    body = json.dumps({"data": [1]})
    assert httpx.post(endpoint.scoring_uri, content=body, headers=bearer(old), timeout=30).status_code == 401
    assert httpx.post(endpoint.scoring_uri, content=body, headers=bearer(new), timeout=30).status_code == 200


def test_a_version_tail_shows_its_replica_log(browser, endpoint):
    browser.open(f"{browser.base}/studio/services/shop")
    browser.driver.find_element(By.CSS_SELECTOR, 'details.log-tail[data-version="green"] summary').click()
    tail = browser.wait_for(lambda _: text(browser, 'details[data-version="green"] pre'), timeout_s=30,
                            message="the log tail should fill")
    assert tail != "(no log lines yet)"
    assert tail.splitlines()[-1] in endpoint.get_logs(num_lines=200, version_name="green")  # green's own log


def test_a_version_is_added_promoted_rolled_back_and_deleted_from_the_page(browser, endpoint, ws):
    browser.open(f"{browser.base}/studio/services/shop")
    before = desired_traffic(ws)
    browser.driver.find_element(By.ID, "new-version-name").send_keys("red")
    browser.driver.find_element(By.CSS_SELECTOR, "#add-version-form button[type=submit]").click()
    browser.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-version="red"]'), timeout_s=120,
                     message="the new version should be listed")
    assert desired_traffic(ws)["red"] == (0, False, False, 0)
    click_action(browser, "promote", "red")
    browser.wait_for(lambda d: d.find_element(By.ID, "default-red").is_selected(), timeout_s=60,
                     message="promote should make red the default")
    assert desired_traffic(ws)["red"][1:3] == (True, True)
    browser.driver.find_element(By.CSS_SELECTOR, '[data-action="rollback"]').click()
    browser.wait_for(lambda d: d.find_element(By.ID, "default-blue").is_selected(), timeout_s=60,
                     message="rollback should make blue the default again")
    assert {k: v for k, v in desired_traffic(ws).items() if k != "red"} == before
    click_action(browser, "delete-version", "red")
    alert = browser.wait_for(lambda d: d.switch_to.alert, message="Delete should ask first")
    assert "red" in alert.text and "shop" in alert.text
    alert.accept()
    browser.wait_for(lambda d: not d.find_elements(By.CSS_SELECTOR, 'tr[data-version="red"]'), timeout_s=60,
                     message="the deleted version should go")
    assert sorted(desired_traffic(ws)) == ["blue", "green"]


def test_deleting_the_endpoint_needs_its_name_typed(browser, endpoint, ws):
    browser.open(f"{browser.base}/studio/services/shop")
    assert "Type shop to delete" in text(browser, "#delete-service-form label")
    browser.driver.find_element(By.ID, "confirm-name").send_keys("sho")
    browser.driver.find_element(By.CSS_SELECTOR, "#delete-service-form button[type=submit]").click()
    assert "Type shop exactly" in browser.wait_for(lambda _: text(browser, "#delete-message"))
    assert "shop" in [s.name for s in Webservice.list(ws)]
    browser.driver.find_element(By.ID, "confirm-name").send_keys("p")
    browser.driver.find_element(By.CSS_SELECTOR, "#delete-service-form button[type=submit]").click()
    browser.wait_for(lambda d: d.current_url.endswith("/studio/services"), timeout_s=60,
                     message="deleting should go back to the list")
    assert "shop" not in text(browser, "main") and [s.name for s in Webservice.list(ws)] == ["broken"]


def click_action(browser: Browser, action: str, version: str) -> None:
    browser.driver.find_element(By.CSS_SELECTOR, f'[data-action="{action}"][data-version="{version}"]').click()


def desired_traffic(ws) -> dict[str, tuple]:
    """Each version's traffic settings as the control plane holds them."""
    return {v.name: (v.traffic_percentile, v.is_default, v.is_control_version_type, v.mirror_percentile)
            for v in Webservice(ws, "shop").versions.values()}


def set_traffic(browser: Browser, **percentiles: float) -> None:
    """Type each version's traffic percentile into the endpoint page's form and apply it."""
    for version, value in percentiles.items():
        field = browser.driver.find_element(By.ID, f"traffic-{version}")
        field.clear()
        field.send_keys(str(value))
    browser.driver.find_element(By.CSS_SELECTOR, "#traffic-form button[type=submit]").click()


def share(browser: Browser) -> dict[str, float]:
    """The split of the last 30 s the page computed from the plotted history: version -> share (0-1)."""
    raw = browser.driver.find_element(By.ID, "observed-split").get_attribute("data-split")
    return json.loads(raw) if raw else {}
