"""Studio over plain HTTP against a real control plane: nothing without the token, the session cookie's flags and
scope (Studio's paths only: never the API's or a scoring front end's), one-time links, CSRF on every change made
with the cookie, signing out and ending every session, and the pages' security headers."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile

import httpx
import pytest

from modelport import Model
from modelport.api import server

PAGES = ["/studio/", "/studio/models", "/studio/environments", "/studio/services", "/studio/computes"]
ASSETS = ["/studio/static/studio.js", "/studio/static/plots.js", "/studio/static/studio.css",
          "/studio/static/vendor/uplot/uPlot.iife.min.js", "/studio/api/services/none/history",
          "/studio/api/v1/services"]
ENVIRONMENT = {"name": "csrf-env", "version": "1", "python": {"userManagedDependencies": True}}


@pytest.fixture(scope="module")
def workspace(new_workspace):
    return new_workspace("studiohttp")


@pytest.fixture(scope="module")
def plane(workspace):
    return server.ensure_running(workspace._dir), workspace._dir.token()


def signed_in(url: str, token: str) -> tuple[httpx.Client, str]:
    """A client holding a Studio session (signed in with the token) and its page's CSRF token."""
    client = httpx.Client(base_url=url, timeout=30)
    assert client.post("/studio/login", data={"token": token, "next": "/studio/"}).status_code == 303
    page = client.get("/studio/").text
    return client, re.search(r'name="csrf-token" content="([0-9a-f]+)"', page).group(1)


def session_cookie(client: httpx.Client) -> tuple[str, str]:
    """The name and value of the client's Studio session cookie."""
    (cookie,) = [c for c in client.cookies.jar if c.name.startswith("modelport_studio_")]
    return cookie.name, cookie.value


def environments(url: str, token: str) -> list[str]:
    answer = httpx.get(f"{url}/api/v1/environments", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return [e["name"] for e in answer.json()]


def test_no_page_asset_or_figure_without_signing_in(plane):
    url, _ = plane
    anonymous = httpx.Client(base_url=url, timeout=30)
    for page in PAGES:
        answer = anonymous.get(page)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/studio/login?next="), page
    for asset in ASSETS:
        assert anonymous.get(asset).status_code == 401, asset
    client, _ = signed_in(url, plane[1])
    name, _ = session_cookie(client)
    forged = httpx.Client(base_url=url, timeout=30, cookies={name: "abc.9999999999." + "0" * 64})
    assert forged.get("/studio/").status_code == 303
    assert forged.get("/studio/static/studio.js").status_code == 401
    assert forged.get("/studio/api/v1/services").status_code == 401


def test_signing_in_sets_an_httponly_samesite_strict_cookie_and_only_with_the_token(plane):
    url, token = plane
    client = httpx.Client(base_url=url, timeout=30)
    wrong = client.post("/studio/login", data={"token": "not-it", "next": "/studio/"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert "not this workspace" in wrong.text
    right = client.post("/studio/login", data={"token": token, "next": "//evil.example/studio/"})
    assert right.status_code == 303 and right.headers["location"] == "/studio/"  # never another site
    cookie = right.headers["set-cookie"]
    assert re.match(r"modelport_studio_[0-9a-f]{10}=", cookie)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/studio"} <= flags  # never sent to /api/v1 or a front end
    assert token not in cookie
    for page in PAGES:
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
    for asset in ASSETS[:4] + ASSETS[5:]:  # (the history of a service that does not exist is a 404)
        assert client.get(asset).status_code == 200, asset


def test_a_missing_service_or_environment_is_a_404_page_naming_it(plane):
    url, token = plane
    client, _ = signed_in(url, token)
    for path, name in (("/studio/services/nope", "nope"), ("/studio/environments/absent/1", "absent")):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html"), path
        assert name in answer.text and "Not found" in answer.text


def test_models_download_as_their_file_or_their_folder_zipped(plane, workspace, tmp_path):
    url, token = plane
    (tmp_path / "weights.bin").write_bytes(b"\x00weights\xff")
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    (tmp_path / "folder" / "sub" / "config.json").write_text('{"a": 1}')
    (tmp_path / "folder" / "top.txt").write_text("top")
    Model.register(workspace, str(tmp_path / "weights.bin"), "single")
    Model.register(workspace, str(tmp_path / "folder"), "several")
    client, _ = signed_in(url, token)
    assert httpx.get(f"{url}/studio/models/single/1/download", timeout=30).status_code == 401
    single = client.get("/studio/models/single/1/download")
    assert single.content == b"\x00weights\xff" and 'filename="weights.bin"' in single.headers["content-disposition"]
    several = zipfile.ZipFile(io.BytesIO(client.get("/studio/models/several/1/download").content))
    assert {n: several.read(n) for n in several.namelist()} == {"folder/sub/config.json": b'{"a": 1}',
                                                                 "folder/top.txt": b"top"}
    assert client.get("/studio/models/single/9/download").status_code == 404
    assert client.get(f"/studio/models/single/{10**20}/download").status_code == 404  # not a 500
    assert client.get("/studio/static/studio.js%00.css").status_code == 404
    assert client.get("/studio/static/../session.py").status_code in (404, 401)


def test_studio_pages_are_gzipped_and_the_api_answers_as_before(plane, workspace, tmp_path):
    url, token = plane
    for number in range(3):
        (tmp_path / f"w{number}.txt").write_text("w")
        Model.register(workspace, str(tmp_path / f"w{number}.txt"), f"zipped-{number}", tags={"team": "x" * 300})
    client, _ = signed_in(url, token)
    page = client.get("/studio/models")
    assert page.status_code == 200 and page.headers["content-encoding"] == "gzip" and "zipped-2" in page.text
    asset = client.get("/studio/static/vendor/uplot/uPlot.iife.min.js")
    assert asset.headers["content-encoding"] == "gzip" and asset.content.startswith(b"/*! https://github.com/leeoniya")
    api = httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert len(api.content) > 1000 and "content-encoding" not in api.headers


def test_a_one_time_link_signs_in_once(plane):
    url, token = plane
    assert httpx.post(f"{url}/api/v1/studio/links", timeout=30).status_code == 401  # links need the token
    link = httpx.post(f"{url}/api/v1/studio/links", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    target = link.json()["url"]
    assert target.startswith(f"{url}/studio/login?code=") and token not in target
    first = httpx.Client(timeout=30)
    assert first.get(target).status_code == 303 and first.get(f"{url}/studio/").status_code == 200
    second = httpx.Client(timeout=30)
    reused = second.get(target)
    assert reused.status_code == 401 and "set-cookie" not in reused.headers
    assert "used already or has expired" in reused.text


def test_changes_made_with_the_cookie_need_the_csrf_token_and_the_same_origin(plane):
    url, token = plane
    client, csrf = signed_in(url, token)
    host = httpx.URL(url).netloc.decode()
    refused = [
        {},
        {"X-CSRF-Token": "0" * 64},
        {"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        {"X-CSRF-Token": csrf, "Origin": f"https://{host}"},  # another scheme is another origin
        {"X-CSRF-Token": csrf, "Origin": f"http://{host}", "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        answer = client.post("/studio/api/v1/environments", json=ENVIRONMENT, headers=headers)
        assert answer.status_code == 403, headers
        assert "CSRF token" in answer.json()["message"]
    assert "csrf-env" not in environments(url, token)  # nothing changed
    made = client.post("/studio/api/v1/environments", json=ENVIRONMENT,
                       headers={"X-CSRF-Token": csrf, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert made.status_code == 201, made.text
    assert "csrf-env" in environments(url, token)
    # another session's CSRF token does not do
    _, other_csrf = signed_in(url, token)
    assert client.delete("/studio/api/v1/computes/none", headers={"X-CSRF-Token": other_csrf}).status_code == 403


def test_the_api_takes_the_workspace_token_only_never_the_cookie(plane):
    url, token = plane
    client, csrf = signed_in(url, token)
    name, value = session_cookie(client)
    with_cookie = httpx.Client(base_url=url, timeout=30, cookies={name: value})
    assert with_cookie.get("/api/v1/services").status_code == 401
    assert with_cookie.post("/api/v1/environments", json=ENVIRONMENT, headers={"X-CSRF-Token": csrf}).status_code \
        == 401
    assert with_cookie.get("/metrics").status_code == 401
    assert with_cookie.get("/studio/api/v1/services").status_code == 200


def test_two_workspaces_studios_on_one_host_keep_their_own_sessions(plane, new_workspace):
    url, token = plane
    other = new_workspace("studiohttp2")
    other_url, other_token = server.ensure_running(other._dir), other._dir.token()
    client, _ = signed_in(url, token)
    assert client.post(f"{other_url}/studio/login", data={"token": other_token}).status_code == 303
    names = {c.name for c in client.cookies.jar}
    assert len(names) == 2  # one cookie per workspace: signing in to one does not sign out of the other
    assert client.get("/studio/").status_code == 200 and client.get(f"{other_url}/studio/").status_code == 200


def test_signing_out_ends_the_session_everywhere_and_end_sessions_ends_them_all(plane, workspace):
    url, token = plane
    client, csrf = signed_in(url, token)
    name, value = session_cookie(client)
    assert client.post("/studio/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/studio/").status_code == 200
    out = client.post("/studio/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and f'{name}=""' in out.headers["set-cookie"]
    copy = httpx.Client(base_url=url, timeout=30, cookies={name: value})  # a copy of the signed-out cookie
    assert copy.get("/studio/").status_code == 303 and copy.get("/studio/api/v1/services").status_code == 401
    first, second = signed_in(url, token)[0], signed_in(url, token)[0]
    ended = subprocess.run([sys.executable, "-m", "modelport.cli.main", "studio", "--end-sessions"],
                           cwd=workspace._dir.root.parent, capture_output=True, text=True, timeout=60)
    assert ended.returncode == 0 and "Ended every Studio session" in ended.stdout, ended.stderr
    assert first.get("/studio/").status_code == 303 and second.get("/studio/").status_code == 303
    assert signed_in(url, token)[0].get("/studio/").status_code == 200  # signing in again works
    server.stop(workspace._dir)  # a restarted control plane still refuses them
    restarted = server.ensure_running(workspace._dir)
    assert restarted == url  # and keeps its address: open pages and bookmarks keep working
    name, value = session_cookie(first)
    assert httpx.get(f"{restarted}/studio/", cookies={name: value}, timeout=30).status_code == 303
