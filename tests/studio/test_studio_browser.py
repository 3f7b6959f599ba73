"""Studio in a real browser (Debian's headless chromium through chromium-driver) against a real control plane,
real replicas and the real Envoy front end: sign in with the one-time link, every page at 1280 px and at a phone's
width (screenshots kept in test-artifacts/studio), change a weight and see the split change in the plot once
traffic flows (a mirrored version's copies apart), a rule violation shown inline and nothing changed, a stale page
that changes only what its user changed, the open page refreshing itself, a regenerated key refusing the old one,
the banner when the control plane is gone, and no console error on any page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from modelport import AksEndpoint, AksWebservice, Environment, InferenceConfig, Model, Webservice
from modelport.api import server
from modelport.sdk.webservice import WebserviceError
from tests.conftest import FIXTURES, register_weights
from tests.studio.browser import DESKTOP, PHONE, Browser, artifacts_dir, browser_missing
from tests.traffic import Traffic, answered_by, bearer

if browser_missing() and not os.environ.get("CI"):
    pytest.skip(f"no browser for the Studio tests: {browser_missing()}", allow_module_level=True)

APP = FIXTURES / "deploy_app"
WAIT_MS = 10000
NOTE = "a<b && c>d"  # shown as written wherever a page shows it
DESCRIPTION = "Scores the shop's <orders> & returns"
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
        env.environment_variables = {"APP_VERSION": version, "NOTE": NOTE}
        return InferenceConfig("score.py", source_directory=APP, environment=env)

    config("blue").environment.register(ws)

    deploy = AksEndpoint.deploy_configuration(num_replicas=1, auth_enabled=True, version_name="blue",
                                              max_request_wait_time=WAIT_MS, description=DESCRIPTION,
                                              tags={"team": "retail"})
    shop = Model.deploy(ws, "shop", [model], config("blue"), deploy)
    shop.wait_for_deployment(timeout_sec=120)
    shop.create_version("green", inference_config=config("green"), traffic_percentile=0)
    shop.wait_for_deployment(timeout_sec=120)
    return shop


@pytest.fixture(scope="module")
def broken(ws, endpoint):
    """Web service ``broken``: its init() raises, so it is Failed; its environment is not registered."""
    env = Environment("studio-broken-env")
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
    assert "Failed" in rows[0].text and "Healthy" in rows[1].text
    whole = broken.error or ""
    first, *rest = whole.strip().splitlines()
    assert rest, f"the reason should be several lines (the replica's log tail): {whole!r}"
    reason = rows[0].find_element(By.CSS_SELECTOR, ".reason")
    assert reason.find_element(By.CSS_SELECTOR, ".reason-first").text == first.strip()
    details = reason.find_element(By.CSS_SELECTOR, "details")
    assert details.get_attribute("open") is None, "the rest of the reason should start collapsed"
    details.find_element(By.CSS_SELECTOR, "summary").click()
    kept = details.find_element(By.CSS_SELECTOR, "pre").get_attribute("textContent")
    assert kept.splitlines() == rest, "the rest of the reason should keep its lines"
    assert "init exploded on purpose" in whole
    cards = {c.text.split("\n", 1)[1]: c.text.split("\n", 1)[0] for c in
             browser.driver.find_elements(By.CSS_SELECTOR, ".card")}
    assert cards == {"model": "1", "model version": "1", "registered environment": "1", "endpoint": "1",
                     "web service": "1", "compute target": "1"}, "one of each, each said in the singular"


def test_every_page_shows_the_workspace(browser, endpoint, broken):
    pages = {"overview": ("/studio/", ["shop", "1\nendpoint"]),
             "models": ("/studio/models", ["echo-model", "shop", "Download"]),
             "environments": ("/studio/environments", ["studio-test-env", "shop", "studio-broken-env"]),
             "services": ("/studio/services", ["shop", "blue 100%", "green 0%"]),
             "computes": ("/studio/computes", ["local", "this machine"])}
    for name, (path, expected) in pages.items():
        browser.open(browser.base + path)
        body = text(browser, "main")
        for words in expected:
            assert words in body, f"{path} should show {words!r}:\n{body}"
        both_widths(browser, name)
    browser.open(f"{browser.base}/studio/environments")
    unregistered = browser.driver.find_element(By.CSS_SELECTOR, "tr.unregistered")
    assert "studio-broken-env" in unregistered.text and "not registered" in unregistered.text
    assert "broken" in unregistered.text
    browser.driver.find_element(By.LINK_TEXT, "studio-test-env").click()
    browser.wait_for(lambda d: "Content hash" in text(browser, "main"))
    assert text(browser, "#build-state") == "Built"
    assert "build of environment studio-test-env" in text(browser, "#build-log")
    assert f'"NOTE": "{NOTE}"' in text(browser, "#spec")  # as written, not \u003c escapes
    both_widths(browser, "environment")


def test_long_names_and_descriptions_wrap_inside_their_table(browser, endpoint, ws, tmp_path):
    long_name = "m" * 250
    (tmp_path / "w.txt").write_text("w")
    Model.register(ws, tmp_path / "w.txt", long_name, description="Predicts <churn> & upsell")
    browser.open(f"{browser.base}/studio/models")
    row = browser.driver.find_element(By.XPATH, f"//main//tr[td[1][normalize-space()='{long_name}']]")
    assert "Predicts <churn> & upsell" in row.text
    assert fits(browser, "main .scroll"), "a long model name should wrap, not widen the table past its box"
    both_widths(browser, "models-long-name")


def test_the_endpoint_page_shows_its_versions_and_traffic(browser, endpoint):
    browser.open(f"{browser.base}/studio/services/shop")
    rows = {row.get_attribute("data-version"): row for row in
            browser.driver.find_elements(By.CSS_SELECTOR, "#traffic-form tr[data-version]")}
    assert sorted(rows) == ["blue", "green"]
    assert rows["blue"].find_element(By.CSS_SELECTOR, ".effective").text == "100%"
    assert rows["green"].find_element(By.CSS_SELECTOR, ".effective").text == "0%"
    assert browser.driver.find_element(By.ID, "default-blue").is_selected()
    assert text(browser, "#traffic-preview") == "After Apply: blue 100%, green 0%"
    assert endpoint.scoring_uri in text(browser, "#curl")
    assert "$KEY" in text(browser, "#curl") and endpoint.get_keys()[0] not in browser.driver.page_source
    facts = text(browser, "dl.facts")
    assert DESCRIPTION in facts and "team retail" in facts
    settings = browser.driver.find_element(By.CSS_SELECTOR, 'details.settings[data-version="green"]')
    assert settings.get_attribute("open") is None
    settings.find_element(By.CSS_SELECTOR, "summary").click()
    assert "max_request_wait_time\n10000" in settings.text and "studio-test-env" in settings.text
    browser.driver.execute_script("arguments[0].scrollIntoView()", settings)
    browser.screenshot("endpoint-settings")
    browser.driver.execute_script("scrollTo(0, 0)")
    browser.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-plot="rps"] canvas'),
                     message="the requests plot should be drawn")
    loaded = browser.driver.execute_script("return performance.getEntriesByType('resource').map((r) => r.name)")
    assert loaded and all(url.startswith(f"{browser.base}/studio/") for url in loaded), loaded  # works offline
    both_widths(browser, "endpoint")


def test_the_preview_shows_the_split_apply_would_make(browser, endpoint, ws):
    before = desired_traffic(ws)
    browser.open(f"{browser.base}/studio/services/shop")
    type_into(browser, "traffic-green", 30)
    assert text(browser, "#traffic-preview") == "After Apply: blue 70%, green 30%"
    browser.driver.find_element(By.ID, "default-green").click()
    assert text(browser, "#traffic-preview") == "After Apply: blue 0%, green 100%"
    type_into(browser, "traffic-blue", 80)
    type_into(browser, "traffic-green", 50)
    preview = text(browser, "#traffic-preview")
    assert preview.startswith("After Apply: no change.") and "add up to 130, over 100" in preview  # no split shown
    type_into(browser, "traffic-blue", 150)
    preview = text(browser, "#traffic-preview")
    assert "blue's traffic percentile must be from 0 to 100" in preview and "%," not in preview
    type_into(browser, "traffic-green", 30)
    type_into(browser, "traffic-blue", 0)
    type_into(browser, "mirror-blue", 25)
    preview = text(browser, "#traffic-preview")
    assert preview.startswith("After Apply: green 100%; blue gets copies of 25% of requests"), preview
    assert desired_traffic(ws) == before  # a preview changes nothing


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
    endpoint.create_version("shadow", mirror_percentile=50)  # copies of half the requests, no share of the split
    endpoint.wait_for_deployment(timeout_sec=120)
    browser.open(f"{browser.base}/studio/services")
    assert "shadow 0% (mirror 50%)" in text(browser, "main"), "the list should show the mirroring"
    key = endpoint.get_keys()[0]
    with Traffic(endpoint.scoring_uri, answered_by, threads=2, headers=bearer(key), request_timeout=60) as load:
        browser.open(f"{browser.base}/studio/services/shop")
        browser.wait_for(lambda _: share(browser).get("blue", 0) > 0.95, timeout_s=60,
                         message="all requests should go to blue before the change")
        set_traffic(browser, blue=50, green=50)
        browser.wait_for(settled(lambda d: text(browser, "#traffic-form tr[data-version=green] .effective") == "50%"),
                         timeout_s=60, message="the page should show the new split")
        browser.wait_for(lambda _: 0.35 < share(browser).get("green", 0) < 0.65, timeout_s=90,
                         message="the plotted split should show green taking about half the requests")
        browser.wait_for(lambda _: 0.2 < share(browser, "mirrored").get("shadow", 0) < 0.8, timeout_s=60,
                         message="the shadow version should get copies of about half the requests")
        assert set(share(browser)) == {"blue", "green"}, "a mirrored version's copies are not part of the split"
        assert "shadow gets copies of" in text(browser, "#observed-split")
        legend = text(browser, '[data-plot="rps"] .u-legend')
        assert "blue" in legend and "green" in legend and "shadow" in legend
        browser.driver.execute_script("document.getElementById('plots').scrollIntoView()")
        browser.screenshot("endpoint-split-changed")
    assert load.counts["blue"] > 0 and load.counts["green"] > 0
    assert set(load.counts) <= {"blue", "green"}, load.counts  # no failed request while the weight changed
    assert Webservice(ws, "shop").versions["green"].traffic_percentile == 50
    endpoint.delete_version("shadow")  # elsewhere: the open page notes it and stops plotting it
    browser.wait_for(lambda _: "deleted shadow" in text(browser, "#page-notice"), timeout_s=30,
                     message="the page should note the version deleted elsewhere")
    browser.wait_for(lambda _: "shadow" not in text(browser, '[data-plot="rps"] .u-legend'), timeout_s=30,
                     message="a deleted version should leave the plots")
    assert "shadow" not in text(browser, "#observed-split")
    options = [o.get_attribute("value") for o in browser.driver.find_elements(By.CSS_SELECTOR, "#plot-version option")]
    assert options == ["", "blue", "green"]
    browser.driver.find_element(By.LINK_TEXT, "Reload to see it").click()
    browser.wait_for(settled(lambda d: not d.find_elements(By.CSS_SELECTOR, 'tr[data-version="shadow"]')),
                     message="the reload link should show the versions there are")


def test_a_stale_page_changes_only_what_its_user_changed(browser, endpoint, ws):
    browser.open(f"{browser.base}/studio/services/shop")
    shown = browser.driver.find_element(By.ID, "traffic-green").get_attribute("value")
    elsewhere = 30 if float(shown) != 30 else 35
    endpoint.update_version("green", traffic_percentile=elsewhere)  # elsewhere, after the page loaded
    browser.wait_for(lambda _: "changed the traffic settings of green" in text(browser, "#page-notice"),
                     timeout_s=30, message="the page should note the change made elsewhere")
    assert browser.driver.find_element(By.ID, "traffic-green").get_attribute("value") == shown  # inputs untouched
    browser.driver.find_element(By.ID, "control-green").click()  # an unrelated change, from the stale page
    browser.driver.find_element(By.CSS_SELECTOR, "#traffic-form button[type=submit]").click()
    browser.wait_for(lambda _: desired_traffic(ws)["green"][2], timeout_s=60, message="green should become control")
    assert desired_traffic(ws)["green"] == (elsewhere, False, True, 0), "the change made elsewhere should stay"
    browser.wait_for(settled(lambda d: d.find_element(By.ID, "traffic-green").get_attribute("value") == str(elsewhere)),
                     message="the page should reload showing both changes")
    before = desired_traffic(ws)
    browser.driver.find_element(By.CSS_SELECTOR, "#traffic-form button[type=submit]").click()
    assert "Nothing changed" in browser.wait_for(lambda _: text(browser, "#traffic-message"))
    assert desired_traffic(ws) == before
    endpoint.update_version("blue", is_control_version_type=True)


def test_the_open_page_refreshes_states_and_replicas_in_place(browser, endpoint, ws):
    browser.open(f"{browser.base}/studio/services/shop")
    browser.driver.execute_script("window.notReloaded = true")
    green = 'tr[data-version="green"]'
    shown = browser.driver.find_element(By.ID, "traffic-green").get_attribute("value")
    assert text(browser, f"{green} .replicas") == "1 / 1" and float(shown) != 40
    endpoint.update_version("green", traffic_percentile=40, num_replicas=2)  # and a rolling update to 2 replicas
    browser.wait_for(lambda _: text(browser, f"{green} .effective") == "40%", timeout_s=30,
                     message="the split should refresh in place")
    assert text(browser, 'tr[data-version="blue"] .effective') == "60%"
    browser.wait_for(lambda _: text(browser, f"{green} .replicas") == "2 / 2", timeout_s=120,
                     message="the replicas should refresh in place")
    assert text(browser, f"{green} .replica-set") == Webservice(ws, "shop").versions["green"].replica_set != "green-1"
    assert text(browser, f"{green} .state") == "Healthy"
    assert browser.driver.execute_script("return window.notReloaded") is True, "the page should not reload"
    assert browser.driver.find_element(By.ID, "traffic-green").get_attribute("value") == shown  # not the inputs


def test_a_regenerated_key_is_shown_and_the_old_one_refused(browser, endpoint):
    old, secondary = endpoint.get_keys()
    browser.open(f"{browser.base}/studio/services/shop")
    assert old not in text(browser, "#key-primary")  # masked until revealed
    reveal = browser.driver.find_element(By.ID, "reveal-primary")
    reveal.click()
    browser.wait_for(lambda _: text(browser, "#key-primary") == old, message="Reveal should show the key")
    assert reveal.text == "Hide" and secondary not in text(browser, "#key-secondary")  # only that key
    assert browser.driver.find_element(By.ID, "reveal-secondary").text == "Reveal"
    reveal.click()
    browser.wait_for(lambda _: old not in text(browser, "#key-primary"), message="Hide should mask the key again")
    assert reveal.text == "Reveal"
    browser.driver.find_element(By.ID, "reveal-secondary").click()
    browser.wait_for(lambda _: text(browser, "#key-secondary") == secondary, message="Reveal should show the key")
    assert old not in text(browser, "#key-primary")
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
    name = "red-" + "x" * 28  # the longest name there may be
    browser.driver.find_element(By.ID, "new-version-name").send_keys(name + "y")
    assert browser.driver.find_element(By.ID, "new-version-name").get_attribute("value") == name + "y"  # not cut
    browser.driver.find_element(By.CSS_SELECTOR, "#add-version-form button[type=submit]").click()
    refused = browser.wait_for(lambda _: "32" in text(browser, "#add-version-message") and
                               text(browser, "#add-version-message"), message="the server's rule should show")
    assert name + "y" in refused
    EXPECTED_CONSOLE.append("/api/v1/services/shop/versions - Failed to load resource: the server responded with a "
                            "status of 400")
    browser.driver.find_element(By.ID, "new-version-name").send_keys(Keys.BACK_SPACE)
    browser.driver.find_element(By.CSS_SELECTOR, "#add-version-form button[type=submit]").click()
    browser.wait_for(settled(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-version="{name}"]')),
                     timeout_s=120, message="the new version should be listed")
    assert desired_traffic(ws)[name] == (0, False, False, 0)
    assert fits(browser, "#traffic-form .scroll"), "a long version name should wrap, not push the buttons off"
    both_widths(browser, "endpoint-long-version")
    click_action(browser, "promote", name)
    browser.wait_for(settled(lambda d: d.find_element(By.ID, f"default-{name}").is_selected()), timeout_s=60,
                     message="promote should make the new version the default")
    assert desired_traffic(ws)[name][1:3] == (True, True)
    browser.driver.find_element(By.CSS_SELECTOR, '[data-action="rollback"]').click()
    browser.wait_for(settled(lambda d: d.find_element(By.ID, "default-blue").is_selected()), timeout_s=60,
                     message="rollback should make blue the default again")
    assert {k: v for k, v in desired_traffic(ws).items() if k != name} == before
    click_action(browser, "delete-version", name)
    alert = browser.wait_for(lambda d: d.switch_to.alert, message="Delete should ask first")
    assert name in alert.text and "shop" in alert.text
    alert.accept()
    browser.wait_for(settled(lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-version="{name}"]')),
                     timeout_s=60, message="the deleted version should go")
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


def test_a_lost_control_plane_shows_a_banner(browser, ws, broken):
    """The page cannot learn a restarted control plane's new address (it binds a new port): the old page keeps
    saying the connection is lost, and the new address serves the same session."""
    browser.open(f"{browser.base}/studio/services/broken")
    assert not text(browser, "#connection")
    server.stop(ws._dir)
    EXPECTED_CONSOLE.append("net::ERR_CONNECTION_REFUSED")
    banner = browser.wait_for(lambda _: text(browser, "#connection"), timeout_s=30,
                              message="the page should say the control plane is gone")
    assert "Lost the connection to the control plane" in banner
    assert browser.driver.find_element(By.ID, "connection").get_attribute("role") == "alert"
    browser.screenshot("service-connection-lost")
    url = server.ensure_running(ws._dir)
    if url == browser.base:
        browser.wait_for(lambda _: not text(browser, "#connection"), timeout_s=30,
                         message="the banner should go once the control plane answers again")
    else:
        assert text(browser, "#connection"), "the old address still does not answer"
        browser.base = url
        browser.open(f"{url}/studio/services/broken")
        browser.wait_for(lambda _: text(browser, "#service-state .state") == "Failed",
                         message="the new address should serve the page to the same session")
        assert not text(browser, "#connection")


def test_an_ended_session_goes_to_sign_in(browser, ws, broken):
    browser.open(f"{browser.base}/studio/services/broken")
    subprocess.run([sys.executable, "-m", "modelport.cli.main", "studio", "--end-sessions"],
                   cwd=ws._dir.root.parent, capture_output=True, text=True, timeout=60, check=True)
    EXPECTED_CONSOLE.append("the server responded with a status of 401")
    browser.wait_for(lambda d: "/studio/login" in d.current_url, timeout_s=30,
                     message="a poll answered 401 should go to the sign-in page")
    assert "next=%2Fstudio%2Fservices%2Fbroken" in browser.driver.current_url


def settled(condition):
    """``condition`` for ``Browser.wait_for`` across a page reload: an element read while the page was replaced
    (stale) counts as not met yet."""
    def check(driver):
        try:
            return condition(driver)
        except StaleElementReferenceException:
            return False
    return check


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


def type_into(browser: Browser, field_id: str, value: float) -> None:
    """Replace what the input ``field_id`` holds with ``value``, as a user types it."""
    field = browser.driver.find_element(By.ID, field_id)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value))


def share(browser: Browser, which: str = "split") -> dict[str, float]:
    """The split of the last 30 s the page computed from the plotted history: version -> share (0-1) of the clients'
    requests; ``which="mirrored"``: the copies mirrored versions got, as a share of those requests."""
    raw = browser.driver.find_element(By.ID, "observed-split").get_attribute(f"data-{which}")
    return json.loads(raw) if raw else {}


def fits(browser: Browser, selector: str) -> bool:
    """Whether the element ``selector`` (a table's scrolling box) needs no sideways scrolling at the current width."""
    return browser.driver.execute_script(
        "const box = document.querySelector(arguments[0]); return box.scrollWidth <= box.clientWidth", selector)
