"""The explorer (`mlmd-exercise ui`) in a real Chromium, and its security rules over HTTP.

Each server is the real command in a process of its own, on 127.0.0.1 and a
free port, over a real store; the browser is Debian's chromium driven through
its chromedriver. Screenshots of each page go to the test's tmp_path.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List
from urllib.parse import urlsplit

import pytest

import mlmd_exercise as mx
from mlmd_exercise import workflow

from conftest import digest, write

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", '"><svg onload=alert(3)>',
       "javascript:alert(4)"]


# -- fixtures: stores, servers, the browser ---------------------------------------------------


def _make_demo(workdir: Path) -> Path:
    """The store the demo job makes: run twice, then once on iris (a model and its metrics)."""
    store = mx.open_store(workdir / "metadata.db", create=True)
    workflow.run_demo(store, workdir)
    workflow.run_demo(store, workdir)
    workflow.run_demo(store, workdir, dataset="iris")
    return workdir / "metadata.db"


def _make_xss(workdir: Path) -> Path:
    """A store whose every kind of string holds markup: names, properties, keys, URIs, types."""
    tracker = mx.Tracker(workdir / "xss.db", experiment=XSS[0])
    data = write(workdir / "data" / "<b>bold</b>.csv", "a,b\n1,2\n")
    train = tracker.dataset(data, split=XSS[1])
    params = {XSS[0]: XSS[1], "note": XSS[2], "link": XSS[3]}
    with tracker.execution("Trainer", inputs={XSS[2]: train}, params=params) as run:
        run.log_metrics({"score": 0.5, XSS[2]: 0.25})  # text is no metric: markup in its name
        run.log_model(write(workdir / "models" / "m.joblib", "model"), name=XSS[1])
    with tracker.execution(XSS[1], inputs={"examples": train}) as run:  # a type named with markup
        run.log_output(XSS[0], write(workdir / "models" / "o.bin", "out"), type=XSS[2])
    return workdir / "xss.db"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    return _make_demo(tmp_path_factory.mktemp("web-demo"))


@pytest.fixture(scope="module")
def xss_store(tmp_path_factory) -> Path:
    return _make_xss(tmp_path_factory.mktemp("web-xss"))


class Server:
    def __init__(self, url: str, proc: subprocess.Popen) -> None:
        self.url, self.proc = url, proc
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host, self.port = parts.hostname, parts.port
        self.token = parts.path.split("/")[1]  # the printed address is /<token>/runs
        self.prefix = f"/{self.token}"  # what every address of the session starts with
        self.root = self.base + self.prefix

    def get(self, path: str, headers=None, token: bool = True, timeout: float = 30):
        """A raw request for `path` (sent as is) under the session's /<token>, unless told not to."""
        con = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        con.request("GET", (self.prefix if token else "") + path, headers=sent)
        response = con.getresponse()
        body = response.read().decode("utf-8", "replace")
        con.close()
        return response.status, dict(response.getheaders()), body


def start_server(store: Path, *extra: str) -> Server:
    proc = subprocess.Popen([sys.executable, "-m", "mlmd_exercise", "ui", "--db", str(store), "--no-browser",
                             "--port", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"ui printed no address: {line!r} {proc.stderr.read()}")
    return Server(match.group(1), proc)


def stop(server: Server) -> str:
    """Stops the server as `kill` does; returns what it wrote to stderr."""
    server.proc.terminate()
    _, err = server.proc.communicate(timeout=10)
    return err


@pytest.fixture(scope="module")
def demo_server(demo_store) -> Iterator[Server]:
    server = start_server(demo_store)
    yield server
    stop(server)


@pytest.fixture(scope="module")
def xss_server(xss_store) -> Iterator[Server]:
    server = start_server(xss_store)
    yield server
    stop(server)


# Recorded before any script of the page runs: dialogs, and script that the CSP blocked.
_RECORDER = """
window.__seen = [];
['alert', 'confirm', 'prompt'].forEach(function (n) {
  window[n] = function (m) { window.__seen.push(n + ':' + m); };
});
document.addEventListener('securitypolicyviolation', function (e) {
  window.__seen.push('csp:' + e.violatedDirective + ':' + e.blockedURI);
});
"""


def _chromium_missing() -> bool:
    return not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists())


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if _chromium_missing():
        if os.environ.get("CI"):  # CI installs it (.ci/run): a skip there would hide a gap
            pytest.fail(f"CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing")
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _RECORDER})
    yield driver
    driver.quit()


def _open(driver, url: str) -> None:
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"


def _go(driver, element, pattern: str) -> None:
    """Clicks a link or button and waits until the page's address matches `pattern`."""
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(driver, 20).until(lambda d: re.search(pattern, d.current_url))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _seen(driver) -> List[str]:
    return driver.execute_script("return window.__seen || []")


def _no_js_errors(driver) -> None:
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def _shot(driver, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    return path


# -- the user's path: runs -> filter -> a run -> its lineage -> the dataset; compare --------------


def test_a_user_goes_from_runs_to_the_data_and_compares_two_runs(browser, demo_server, demo_store, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = digest(demo_store)
    _open(browser, demo_server.url)  # the printed address
    assert browser.current_url == demo_server.root + "/runs"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    assert len(rows) == 4  # two demo Trainers, the iris Trainer and its Evaluator
    header = browser.find_element(By.CSS_SELECTOR, "table.runs thead").text
    for column in ("type", "state", "experiment", "start", "duration", "C", "max_iter", "train_accuracy",
                   "accuracy", "f1_macro"):
        assert column in header
    _shot(browser, tmp_path, "runs")

    Select(browser.find_element(By.ID, "f-state")).select_by_value("COMPLETE")
    Select(browser.find_element(By.ID, "f-type")).select_by_value("Trainer")
    _go(browser, browser.find_element(By.ID, "f-apply"), r"state=COMPLETE.*type=Trainer|type=Trainer.*state=COMPLETE")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    assert len(rows) == 3 and all("Trainer" in r.text for r in rows)
    _shot(browser, tmp_path, "runs-filtered")

    # The newest Trainer (iris): its page, then its lineage upstream, then the dataset in the graph.
    _go(browser, rows[0].find_element(By.CSS_SELECTOR, "td:nth-child(2) a"), r"/execution/\d+$")
    assert "Params" in browser.page_source and "DataSet" in browser.page_source
    _shot(browser, tmp_path, "execution")
    _go(browser, browser.find_element(By.ID, "lineage-link"), "/lineage/execution/")
    svg = browser.find_element(By.CSS_SELECTOR, "#graph svg")
    assert svg.find_elements(By.CSS_SELECTOR, "g.node")
    assert browser.execute_script("return !!window.explorerPanZoom")  # pan and zoom are on
    _shot(browser, tmp_path, "lineage")
    dataset = [a for a in browser.find_elements(By.CSS_SELECTOR, "#graph svg a")
               if "DataSet" in (a.get_attribute("textContent") or "")][0]
    _go(browser, dataset, r"/artifact/\d+$")
    assert "DataSet #" in browser.find_element(By.TAG_NAME, "h1").text
    assert "iris_train.csv" in browser.page_source
    assert "matches its fingerprint" in browser.page_source
    _shot(browser, tmp_path, "dataset")

    # Compare the first Trainer run with the iris one, picked on the runs page.
    _open(browser, demo_server.root + "/runs?type=Trainer&sort=id")
    picks = browser.find_elements(By.CSS_SELECTOR, "input.pick")
    assert not browser.find_element(By.ID, "compare-button").is_enabled()
    picks[0].click()
    picks[2].click()
    _go(browser, browser.find_element(By.ID, "compare-button"), r"/compare\?execution=")
    table = browser.find_element(By.CSS_SELECTOR, "table.compare").text
    assert "metrics" in table and "inputs" in table and "train_accuracy" in table  # as `diff` says
    differs = " ".join(r.text for r in browser.find_elements(By.CSS_SELECTOR, "table.compare tr.differs"))
    assert "train_accuracy" in differs and "examples" in differs and "iris_train.csv" in differs
    assert "params" not in table  # the same params: only what differs is listed
    _shot(browser, tmp_path, "compare")

    _open(browser, demo_server.root + "/states")
    assert browser.find_element(By.CSS_SELECTOR, ".chart svg")
    assert "COMPLETE" in browser.find_element(By.CSS_SELECTOR, "table").text
    _shot(browser, tmp_path, "states")
    assert _seen(browser) == []
    _no_js_errors(browser)
    assert digest(demo_store) == before  # the explorer only read


def test_a_model_leads_to_its_data_in_two_clicks(browser, demo_server, tmp_path):
    from selenium.webdriver.common.by import By

    status, _, body = demo_server.get("/runs?type=Trainer")
    # The newest SavedModel: from the newest Trainer's page.
    first = re.search(rf'href="{demo_server.prefix}/execution/(\d+)"', body).group(1)
    _, _, page = demo_server.get(f"/execution/{first}")
    model_id = re.search(rf'href="{demo_server.prefix}/artifact/(\d+)">SavedModel', page).group(1)
    _open(browser, f"{demo_server.root}/artifact/{model_id}")
    _go(browser, browser.find_element(By.ID, "lineage-link"), "/lineage/artifact/")  # one
    dataset = [a for a in browser.find_elements(By.CSS_SELECTOR, "#graph svg a")
               if "DataSet" in (a.get_attribute("textContent") or "")][0]
    _go(browser, dataset, r"/artifact/\d+$")  # two
    assert "DataSet #" in browser.find_element(By.TAG_NAME, "h1").text
    _shot(browser, tmp_path, "model-to-data")


# -- stored markup is text ---------------------------------------------------------------------


def test_stored_markup_is_shown_as_text_and_runs_nothing(browser, xss_server, tmp_path):
    from selenium.webdriver.common.by import By

    _open(browser, xss_server.url)
    pages = ["/runs", "/runs?q=%3Cscript%3E", "/states"]
    _, _, body = xss_server.get("/runs")
    for kind, node_id in re.findall(rf'href="{xss_server.prefix}/(artifact|execution)/(\d+)"', body):
        pages.append(f"/{kind}/{node_id}")
    store_ids = {(k, i) for k, i in re.findall(r"/(artifact|execution)/(\d+)", " ".join(pages))}
    for kind, node_id in sorted(store_ids):
        pages.append(f"/lineage/{kind}/{node_id}?direction=both&hops=all")
    pages += ["/artifact/1", "/artifact/2", "/artifact/3", "/execution/1", "/execution/2",
              "/compare?execution=1&execution=2", "/compare?artifact=2&artifact=3"]
    shown = ""
    for path in pages:
        _open(browser, xss_server.root + path)
        shown += browser.find_element(By.TAG_NAME, "body").text
        assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script, main iframe"), path
        assert _seen(browser) == [], path  # no dialog, and not even a script for the CSP to block
    for payload in XSS:
        assert payload in shown  # the characters themselves, on screen
    _open(browser, xss_server.root + "/execution/1")
    _shot(browser, tmp_path, "xss-execution")
    _open(browser, xss_server.root + "/lineage/execution/2?direction=both&hops=all")
    _shot(browser, tmp_path, "xss-lineage")
    _no_js_errors(browser)


def test_the_csp_blocks_inline_script(demo_server):
    status, headers, _ = demo_server.get("/runs")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "default-src 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


# -- the guard: token, Host, static files, bad input -------------------------------------------


def test_a_request_without_the_token_is_refused(browser, demo_server):
    token = demo_server.token
    for path in ("/runs", "/static/app.js", "/", "/wrong/runs", f"/{token[:-1]}/runs", f"/{token}x/runs",
                 f"/{token.swapcase()}/runs", f"/runs?token={token}", f"/runs/{token}"):
        status, headers, body = demo_server.get(path, token=False)
        assert status == 403 and "no valid token" in body, path
        assert token not in body + str(headers), path  # a refusal never names the token
        # It names nothing that would be refused in turn: its style is in the page, no link out.
        assert _ADDRESS.findall(body) == [] and "<style>" in body, path
    # The cookie the explorer once set carries nothing now.
    assert demo_server.get("/runs", token=False, headers={"Cookie": f"mlmd_token_{demo_server.port}={token}"})[0] == 403
    # In a browser that never had the address: the page says so and shows no run.
    _open(browser, demo_server.base + "/runs")
    assert "403" in browser.title and "token" in browser.page_source
    assert "Trainer" not in browser.page_source


_ADDRESS = re.compile(r'(?:href|src|action)="([^"]*)"')


def test_every_address_a_page_names_keeps_the_token(demo_server):
    status, headers, body = demo_server.get("/runs")
    assert status == 200 and "Set-Cookie" not in headers  # no cookie: nothing for other ports to be sent
    assert demo_server.get("/")[1]["Location"].endswith(f"{demo_server.prefix}/runs")
    for path in ("/runs", "/runs?sort=id&per=2", "/execution/1", "/artifact/2", "/lineage/artifact/2?hops=all",
                 "/lineage/artifact/2?expand=1", "/compare?execution=1&execution=3", "/compare?artifact=2&artifact=3",
                 "/states", "/nowhere", "/runs?state=DONE"):
        _, _, body = demo_server.get(path)
        addresses = [a for a in _ADDRESS.findall(body) if not a.startswith("#")]  # "#": within the page (a chart's glyphs)
        assert addresses, path
        assert [a for a in addresses if not a.startswith(demo_server.prefix + "/")] == [], path
    # and each link and file of a page opens (a form's action is only a page with its fields)
    for address in set(re.findall(r'(?:href|src)="([^"#][^"]*)"', demo_server.get("/execution/3")[2])):
        assert demo_server.get(html.unescape(address), token=False)[0] == 200, address


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Another web server on this machine: it keeps what browsers send it."""

    seen: List[dict] = []  # each request's headers

    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.seen.append(dict(self.headers))
        body = b"<!DOCTYPE html><title>elsewhere</title><p>another server"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002
        pass


def test_a_second_explorer_or_another_server_never_gets_the_first_ones_credential(browser, demo_server, demo_store):
    other = start_server(demo_store)  # a second explorer, on another port of the same host
    recorder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        _open(browser, demo_server.url)  # the first session, in the browser
        assert browser.title.startswith("Runs")
        # The first one's address on the second one's port: refused, in the browser and over HTTP.
        _open(browser, other.base + demo_server.prefix + "/runs")
        assert "403" in browser.title and "Trainer" not in browser.page_source
        assert other.get(demo_server.prefix + "/runs", token=False)[0] == 403
        _open(browser, other.url)  # its own address works
        assert browser.title.startswith("Runs")
        # Whatever else the browser visits on this host is sent neither session's token, nor
        # any cookie (cookies ignore ports: one the explorer set would go to every server here).
        _open(browser, f"http://127.0.0.1:{recorder.server_address[1]}/page")
        assert _Recorder.seen and all("Cookie" not in headers for headers in _Recorder.seen)
        assert not [h for h in _Recorder.seen if demo_server.token in str(h) or other.token in str(h)]
    finally:
        recorder.shutdown()
        recorder.server_close()
        stop(other)


@pytest.mark.parametrize("host", ["evil.example:80", "evil.example", "127.0.0.1:1", "", "localhost.evil.example"])
def test_a_request_for_another_host_is_refused(demo_server, host):
    status, _, body = demo_server.get("/runs", headers={"Host": host})
    assert status == 403 and "host" in body


def test_localhost_is_the_same_host(demo_server):
    assert demo_server.get("/runs", headers={"Host": f"localhost:{demo_server.port}"})[0] == 200


@pytest.mark.parametrize("path", [
    "/static/../../etc/passwd", "/static/..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%252e%252e%252fetc%252fpasswd", "/static/..\\..\\etc\\passwd", "/static//etc/passwd",
    "/static/./app.js/../../../server.py", "/static/../server.py", "/static/%2e%2e%2fserver.py",
    "/../../etc/passwd", "/static/", "/static/nothing.js"])
def test_no_file_outside_the_assets_can_be_read(demo_server, path):
    status, _, body = demo_server.get(path)
    assert status == 404
    assert "root:" not in body and "import" not in body


def test_the_assets_are_served(demo_server):
    for name in ("app.js", "style.css", "svg-pan-zoom.min.js", "LICENSES.txt", "favicon.svg"):
        status, headers, body = demo_server.get(f"/static/{name}")
        assert status == 200 and body, name


@pytest.mark.parametrize("path, status, named", [
    ("/execution/999", 404, "no execution with id 999"),
    ("/artifact/999", 404, "no artifact with id 999"),
    ("/artifact/abc", 400, "'abc'"),
    ("/execution/-1", 400, "'-1'"),
    ("/execution/0", 400, "'0'"),
    ("/artifact/99999999999999999999999", 400, "'99999999999999999999999'"),
    ("/lineage/model/1", 400, "'model'"),
    ("/lineage/artifact/1?direction=sideways", 400, "'sideways'"),
    ("/lineage/artifact/1?hops=many", 400, "'many'"),
    ("/lineage/artifact/1?hops=99", 400, "'99'"),
    ("/lineage/artifact/1?depth=1", 400, "'depth'"),
    ("/runs?state=DONE", 400, "'DONE'"),
    ("/runs?type=Nope", 404, "'Nope'"),
    ("/runs?context=77", 404, "context with id 77"),
    ("/runs?context=x", 400, "'x'"),
    ("/runs?page=0", 400, "'0'"),
    ("/runs?per=100000", 400, "'100000'"),
    ("/runs?sort=%3Cb%3E", 400, "'<b>'"),
    ("/runs?since=yesterday", 400, "'yesterday'"),
    ("/runs?colour=red", 400, "'colour'"),
    ("/compare?execution=1", 400, "1 values"),
    ("/compare?execution=1&execution=999", 404, "no execution with id 999"),
    ("/compare?execution=1&artifact=2", 400, "compare needs"),
    ("/states?context=999", 404, "context with id 999"),
    ("/nowhere", 404, "'/nowhere'"),
])
def test_bad_ids_and_parameters_get_a_page_naming_them(demo_server, path, status, named):
    got, headers, body = demo_server.get(path)
    assert got == status, body
    assert named in html.unescape(body)
    assert "<b>" not in body
    assert "Traceback" not in body and "File \"" not in body
    assert headers["Content-Security-Policy"]


def test_search_text_is_data_not_a_query(demo_server):
    for text in ["'", "\\", "' OR 1=1 --", "')) OR ((1=1", "\\'", "\" OR name LIKE \"%"]:
        from urllib.parse import quote

        status, _, body = demo_server.get("/runs?q=" + quote(text))
        assert status == 200, (text, body)
        assert "no runs match" in body, text
    status, _, body = demo_server.get("/runs?q=Evaluator")
    assert status == 200 and body.count('name="execution"') == 1
    # SQL's LIKE wildcards are wildcards (as docs/explorer.md says): % is any text.
    assert demo_server.get("/runs?q=%25")[2].count('name="execution"') == 4


def test_two_identical_runs_compare_as_the_same(demo_server):
    status, _, body = demo_server.get("/compare?execution=1&execution=2")
    assert status == 200 and "no differences" in body and 'class="differs"' not in body
    status, _, body = demo_server.get("/compare?artifact=2&artifact=3")  # the two demo models
    assert status == 200 and "no differences" in body and "made by" in body
    made = re.findall(r'made by <a href="([^"]+)">', body)
    assert made == [f"{demo_server.prefix}/execution/1", f"{demo_server.prefix}/execution/2"]
    assert all(demo_server.get(link, token=False)[0] == 200 for link in made)


def test_sorting_and_paging(demo_server):
    _, _, body = demo_server.get("/runs?sort=id&per=2")
    assert re.findall(rf'href="{demo_server.prefix}/execution/(\d+)"', body) == ["1", "2"] and 'rel="next"' in body
    _, _, body = demo_server.get("/runs?sort=id&per=2&page=2")
    assert re.findall(rf'href="{demo_server.prefix}/execution/(\d+)"', body) == ["3", "4"] and 'rel="next"' not in body
    _, _, body = demo_server.get("/runs?sort=-metric:train_accuracy")
    assert re.findall(rf'href="{demo_server.prefix}/execution/(\d+)"', body)[0] == "3"  # iris: the best, then missing last
    _, _, body = demo_server.get("/runs?sort=type")
    assert re.findall(rf'href="{demo_server.prefix}/execution/(\d+)"', body)[0] == "4"  # Evaluator before Trainer
    assert "page 1 of 1 (4 runs)" in body


def test_the_store_is_opened_read_only_and_left_unchanged(tmp_path):
    store = _make_demo(tmp_path)
    before = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    server = start_server(store)
    try:
        for path in ("/runs", "/execution/1", "/artifact/1", "/lineage/artifact/2", "/states",
                     "/compare?execution=1&execution=2"):
            assert server.get(path)[0] == 200
        # Only reads are answered.
        con = http.client.HTTPConnection(server.host, server.port, timeout=10)
        con.request("POST", server.prefix + "/runs", body="x", headers={"Host": f"{server.host}:{server.port}"})
        assert con.getresponse().status == 405
        con.close()
    finally:
        stop(server)
    after = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    assert after["metadata.db"] == before["metadata.db"]
    # SQLite's read-only connection may leave an empty WAL beside a WAL-mode file (as every
    # query command does); nothing was written to it.
    assert {k: v for k, v in after.items() if k != "metadata.db-shm"} == {
        **{k: v for k, v in before.items() if k != "metadata.db-shm"},
        **({"metadata.db-wal": hashlib.sha256(b"").hexdigest()} if "metadata.db-wal" in after else {})}


def test_another_address_needs_host_and_says_so(demo_store):
    server = start_server(demo_store, "--host", "0.0.0.0")
    try:
        assert server.get("/runs", headers={"Host": f"127.0.0.1:{server.port}"})[0] == 200
        assert server.get("/runs", headers={"Host": f"rebind.example:{server.port}"})[0] == 403
        assert server.get("/runs", token=False)[0] == 403
    finally:
        err = stop(server)
    assert "warning: serving on '0.0.0.0'" in err
    default = start_server(demo_store)
    err = stop(default)
    assert default.host == "127.0.0.1" and "warning" not in err


def test_a_taken_port_is_named(demo_store):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "ui", "--db", str(demo_store),
                               "--no-browser", "--port", str(port)], capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mlmd-exercise: error: cannot listen on '127.0.0.1' port {port}: Address already in use"]


# -- under load: many requests at once, each answered within its bound ---------------------------


def test_200_requests_at_once_all_get_an_answer(tmp_path):
    from mlmd_exercise.write.bulk import RunSpec, record_runs

    record_runs(mx.Tracker(tmp_path / "many.db"), (RunSpec(params={"C": i / 10}) for i in range(5000)))
    server = start_server(tmp_path / "many.db")
    answers: list = [None] * 200
    together = threading.Barrier(len(answers))

    def ask(i: int) -> None:
        together.wait()
        try:  # generous: each is answered within the server's 30 s bound, or given a 503
            answers[i] = server.get("/runs", timeout=120)[0]
        except OSError as e:  # refused, reset, timed out: no answer
            answers[i] = repr(e)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(answers))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop(server)
    assert [a for a in answers if a not in (200, 503)] == []
    assert 200 in answers


def test_a_page_past_the_time_bound_is_a_503_naming_the_wait(demo_store):
    server = start_server(demo_store, "--timeout", "0.001")  # shorter than any page with a graph
    try:
        status, headers, body = server.get("/lineage/artifact/1?direction=both&hops=all")
        assert status == 503 and headers["Retry-After"] and headers["Content-Security-Policy"]
        [message] = re.findall(r'<p class="error">(.*?)</p>', body)
        assert "0.001 s" in html.unescape(message) and "Traceback" not in body
        # It goes on answering, each request within its bound: a page or a 503, never a hang.
        for path in ("/runs", "/states", "/lineage/artifact/1"):
            assert server.get(path)[0] in (200, 503), path
    finally:
        err = stop(server)
    assert "Traceback" not in err


def test_ui_refuses_what_it_cannot_serve(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "ui", "--db", str(tmp_path / "none.db"),
                           "--no-browser"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "none.db" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none.db").exists()
    proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "ui", "--port", "http"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "'http'" in proc.stderr
    for bad in ("0", "-1", "soon", "inf", "nan"):
        proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "ui", "--timeout", bad],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and f"not '{bad}'" in proc.stderr, bad


# -- the report, offline -----------------------------------------------------------------------


def test_the_html_report_opens_offline_and_shows_its_graph(browser, demo_store, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "mlmd_exercise", "report", "--db", str(demo_store),
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        browser.get_log("browser")  # start clean
        _open(browser, out.as_uri())
        nodes = browser.find_elements(By.CSS_SELECTOR, ".graph svg g.node")
        assert len(nodes) >= 6 and all(n.is_displayed() for n in nodes)
        assert browser.find_element(By.CSS_SELECTOR, ".chart svg").is_displayed()
        assert len(browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")) == 4
        # Nothing was fetched: every resource the page used is the page itself.
        fetched = browser.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
        assert fetched == []
        _shot(browser, tmp_path, "report")
        _no_js_errors(browser)
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


# -- every backend -----------------------------------------------------------------------------


def test_every_page_answers_on_each_backend(db, tmp_path):
    store = mx.open_store(db, create=True)
    workflow.run_demo(store, tmp_path, dataset="iris")
    del store
    server = start_server(db)
    try:
        for path in ("/runs", "/runs?state=COMPLETE&type=Trainer&sort=-metric:train_accuracy", "/runs?context=1",
                     "/execution/1", "/artifact/1", "/lineage/artifact/3?direction=upstream&hops=3",
                     "/compare?execution=1&execution=2", "/states", "/states?context=1"):
            status, _, body = server.get(path)
            assert status == 200, (path, body)
        _, _, body = server.get("/states")
        assert "<svg" in body and ">2</td>" in body  # two COMPLETE executions
        assert "***" not in server.url and "password" not in server.url
    finally:
        stop(server)


def test_ui_opens_the_browser_where_there_is_a_display(demo_store, tmp_path):
    opened = tmp_path / "opened"
    env = {**os.environ, "DISPLAY": ":99", "BROWSER": f"/bin/sh -c 'echo \"$0\" > {opened}' %s"}
    proc = subprocess.Popen([sys.executable, "-m", "mlmd_exercise", "ui", "--db", str(demo_store), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    server = Server(re.search(r"(http://\S+)", proc.stdout.readline()).group(1), proc)
    try:
        for _ in range(100):
            if opened.exists() and opened.read_text().strip():
                break
            time.sleep(0.1)
        assert opened.read_text().strip() == server.url  # the printed address, token and all
    finally:
        stop(server)


def test_the_web_framework_loads_only_for_ui():
    code = ("import sys, mlmd_exercise.cli.main\n"
            "from mlmd_exercise.web import report, pages, runs, views\n"
            "print('bottle' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60).stdout.strip() == "False"


def test_the_runs_page_charts_a_metric_against_the_param_a_sweep_varies(tmp_path):
    tracker = mx.Tracker(tmp_path / "sweep.db", experiment="sweep")
    cs = (0.001, 0.01, 0.1, 1, 10, 100)
    for i, c in enumerate(cs):
        with tracker.execution("Trainer", params={"C": c, "seed": i % 2, "solver": "lbfgs", "<b>": i}) as run:
            run.log_metrics({"accuracy": [0.7, 0.8, 0.9, 0.9, 0.85, 0.6][i], "loss": 1.0 - i / 10})
    tracker.execution("Trainer", params={"C": "auto"}).finish()  # no number: no point
    server = start_server(tmp_path / "sweep.db")

    def chart(query: str = "") -> str:
        status, _, body = server.get("/runs" + query)
        assert status == 200, body
        return body[body.index('<div class="sweep"'):body.index("</div>", body.index('<div class="sweep"'))]

    try:
        # The first param by name that holds different numbers ('<b>', escaped), the first metric.
        first = chart()
        assert "&lt;b&gt;" in first and "<b>" not in first and 'aria-label="accuracy by &lt;b&gt;"' in first
        sweep = chart("?x=C")
        dots = re.findall(r'<a href="([^"]+)"><circle[^>]*><title>run #(\d+): C = ([^,]+), accuracy = ([^<]+)</title>', sweep)
        assert [(run, c, acc) for _, run, c, acc in dots] == [
            (str(6 - i), f"{c:g}", f"{a:g}") for i, (c, a) in
            enumerate(zip(reversed(cs), (0.6, 0.85, 0.9, 0.9, 0.8, 0.7)))]  # newest first, as listed
        assert all(link.endswith(f"/execution/{run}") for link, run, _, _ in dots)
        assert "C (log scale)" in sweep and sweep.count('class="tick">') >= 6 + 2  # a tick per power of ten
        assert ("highest accuracy: 0.9 at C = 1 (<a" in sweep and "and 1 other run" in sweep
                and "lowest accuracy: 0.6 at C = 100" in sweep)
        # Sorted by a metric: that metric is charted; a chosen one and a chosen param are kept.
        assert 'aria-label="loss by C"' in chart("?x=C&sort=-metric:loss")
        other = chart("?x=seed&y=loss")
        assert 'aria-label="loss by seed"' in other and "(log scale)" not in other
        assert '<option value="seed" selected>' in other and "solver" not in other  # text never differs
        assert "no run has a number for both" in chart("?x=nothing")
        status, _, bad = server.get("/runs?x=%01")
        assert status == 400 and "the chart axis x=" in bad
        status, _, one = server.get("/runs?type=Trainer&q=auto")  # a page with one run: no chart
        assert status == 200 and 'id="sweep"' not in one
    finally:
        stop(server)


def test_a_sweep_drawn_as_one_node_says_the_range_of_the_param_that_differs(tmp_path, run_cli):
    tracker = mx.Tracker(tmp_path / "sweep.db")
    data = tracker.log_dataset(write(tmp_path / "d.csv", "a\n1\n"))
    for c in (0.01, 0.1, 1, 10, 100, 1000):
        with tracker.execution("Trainer", params={"C": c, "penalty": "l2"}, inputs={"examples": data}) as run:
            run.log_metric("accuracy", 0.5 + c / 10_000)
    server = start_server(tmp_path / "sweep.db")
    try:
        status, _, body = server.get(f"/lineage/artifact/{data.id}?direction=downstream")
        assert status == 200 and "6 Trainer runs (COMPLETE; C 0.01–1000)" in body
        svg = body[body.index("<svg"):body.index("</svg>")]
        assert "Trainer x6" in svg and ">C 0.01–1000<" in svg and "penalty" not in svg and "accuracy" not in svg
    finally:
        stop(server)
    out = run_cli("graph", "--artifact", data.id, "-o", tmp_path / "sweep.svg", "--db", tmp_path / "sweep.db")
    assert out.code == 0 and "6 COMPLETE Trainer executions with the same inputs, differing in C 0.01–1000 " in out.out
    assert ">C 0.01–1000<" in (tmp_path / "sweep.svg").read_text()


def test_a_big_fan_out_is_drawn_as_one_node_until_expanded(tmp_path):
    tracker = mx.Tracker(tmp_path / "fan.db")
    data = tracker.log_dataset(write(tmp_path / "d.csv", "a\n1\n"))
    for _ in range(8):
        tracker.execution("Trainer", inputs={"examples": data}).finish()
    server = start_server(tmp_path / "fan.db")
    try:
        status, _, body = server.get(f"/lineage/artifact/{data.id}?direction=downstream")
        assert status == 200 and 'id="collapsed"' in body
        assert "8 Trainer runs (COMPLETE)" in body and "Trainer #5" not in body
        assert "Trainer x8" in body
        status, _, every = server.get(f"/lineage/artifact/{data.id}?direction=downstream&expand=1")
        assert status == 200 and 'id="collapsed"' not in every
        assert all(f"Trainer #{i}" in every for i in range(1, 9))
        status, _, bad = server.get(f"/lineage/artifact/{data.id}?expand=yes")
        assert status == 400 and "expand must be 1, not &#x27;yes&#x27;" in bad
    finally:
        stop(server)
