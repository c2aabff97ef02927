"""Reports in a real browser with the network off: Data Docs and `dvc plots show`.

Every page is opened in headless Chromium with every request that is not a local file (or
loopback) aborted and recorded, like a reviewer's laptop on a plane or a closed network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from bad_inputs import DEFECTS, GATE_LOGS, copy_of, session_base
from conftest import REPO, make_workspace

from saviorrec.stages import run_stage
from saviorrec.workspace import StageError, Workspace

CHROMIUM = Path("/usr/bin/chromium")
SUITES = ["validate_logs.days", "validate_logs.events", "validate_logs.catalog", "validate_sids.items",
          "validate_sids.summary", "validate_sids.levels", "validate_model.predictions", "validate_model.summary"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip("headless Chromium not installed at /usr/bin/chromium (run `make system-deps`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM),
                                      args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


class OfflinePage:
    """A browser page that can reach only local files and loopback; it records what it was refused."""

    def __init__(self, browser):
        self.page = browser.new_page()
        self.left_the_machine: list[str] = []   # requests aborted because they would leave the machine
        self.missing_local: list[str] = []      # local files the page asked for and did not get
        self.page.route("**/*", self._route)
        self.page.on("requestfailed", self._failed)

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")) or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.left_the_machine.append(url)
            route.abort()

    def _failed(self, request):
        if request.url.startswith("file:"):
            self.missing_local.append(request.url)

    def open(self, path: Path):
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        return self.page

    def assert_offline(self):
        assert self.left_the_machine == [], f"requests that would need the network: {self.left_the_machine}"
        assert self.missing_local == [], f"local files the page asked for and did not find: {self.missing_local}"

    def close(self):
        self.page.close()


# ---------------------------------------------------------------- Data Docs: one run, one failure


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A real GX checkpoint run (UpdateDataDocsAction) of one suite: one failed expectation among passes.

    Natural order would put the failure last: the failing column sorts after the passing one, and
    inside it the failing expectation comes second.
    """
    import great_expectations as gx

    from data_checks.runner import Suite, run_suites

    ws = Workspace.open(make_workspace(tmp_path_factory.mktemp("docs_ws")))
    frame = pd.DataFrame({"ds": ["2024-01-01", "2024-01-02"], "a_ok": [1, 2], "z_bad": [0.1, 0.9]})
    expectations = [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=10),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="a_ok"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="z_bad"),
        gx.expectations.ExpectColumnValuesToBeBetween(column="z_bad", min_value=0, max_value=0.5),
    ]
    results, _, _ = run_suites(ws, "validate_demo", [Suite("days", frame, expectations, ["ds"])], "2024-01-02")
    assert [r["success"] for r in results].count(False) == 1
    docs = ws.path("data_docs")
    (page,) = (docs / "validations").rglob("*.html")
    return ws, page


def _results(page) -> list[dict]:
    """Each expectation row on the page, top to bottom: its badge text and colours."""
    return page.evaluate("""() => [...document.querySelectorAll('.saviorrec-badge')].map(badge => {
        const cell = badge.closest('td');
        return {status: badge.innerText.trim(), visible: badge.offsetWidth > 0 && badge.offsetHeight > 0,
                row: getComputedStyle(cell).backgroundColor, badge: getComputedStyle(badge).backgroundColor};
    })""")


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def test_failed_expectation_stands_out_and_comes_first_offline(browser, failed_run, tmp_path):
    _, path = failed_run
    offline = OfflinePage(browser)
    page = offline.open(path)
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(tmp_path / "validation_page.png"), full_page=True)
    offline.assert_offline()
    page.wait_for_selector(".bootstrap-table", timeout=5_000)  # bootstrap-table (local JS) took over the tables

    rows = _results(page)
    assert [r["status"] for r in rows] == ["FAILED", "passed", "passed", "passed"]   # failed first
    failed, passed = rows[0], rows[1]
    assert failed["visible"] and passed["visible"]
    assert failed["row"] != passed["row"], "a failed row looks like a passed one"
    red, green, blue = _rgb(failed["row"])
    assert red > green + 20 and red > blue + 20, f"failed row is not red-tinted: {failed['row']}"
    assert failed["badge"] != passed["badge"]
    assert _rgb(failed["badge"])[0] > 150 and _rgb(failed["badge"])[1] < 80, failed["badge"]

    # sections: the run's overview, then the column holding the failure, then the rest
    headers = [h.strip() for h in page.eval_on_selector_all("h5", "els => els.map(e => e.innerText)")]
    assert headers == ["Overview", "z_bad", "Table-Level Expectations", "a_ok"]
    assert "validate_demo-2024-01-02" in page.inner_text("body")

    # the vendored libraries did load from the site: jQuery, bootstrap CSS, the icon font
    assert page.evaluate("typeof window.jQuery === 'function' && typeof jQuery.fn.bootstrapTable === 'function'")
    assert page.evaluate("getComputedStyle(document.querySelector('.btn-primary')).backgroundColor") \
        not in ("rgba(0, 0, 0, 0)", "transparent")
    assert page.evaluate("[...document.fonts].some(f => f.family.includes('Font Awesome') && f.status === 'loaded')")
    offline.assert_offline()
    offline.close()


def _assert_site_is_self_contained(docs: Path) -> None:
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) >= 3  # index, the suite, the validation result
    for page in pages:
        text = page.read_text(encoding="utf-8")
        refs = re.findall(r'<(?:script|img)\b[^>]*\bsrc="([^"]+)"|<link\b[^>]*\bhref="([^"]+)"', text)
        for ref in (a or b for a, b in refs):
            assert "://" not in ref, f"{page.relative_to(docs)} loads {ref} from the network"
            assert (page.parent / ref).resolve().is_file(), f"{page.relative_to(docs)} references missing {ref}"
    assert (docs / "static" / "vendor" / "MANIFEST.tsv").is_file()


def test_every_rebuild_keeps_the_site_offline(failed_run):
    """A full rebuild (not the checkpoint action) writes pages that only reference files inside the site."""
    from data_checks.runner import SITE, open_context

    ws, _ = failed_run
    docs = ws.path("data_docs")
    shutil.rmtree(docs)
    open_context(ws.path("gx_project"), docs).build_data_docs(site_names=[SITE])
    _assert_site_is_self_contained(docs)


def test_pages_built_by_an_older_site_config_are_rebuilt_once(failed_run):
    """A project whose pages were written before (loading CDNs) gets them rewritten on its next gate run."""
    from data_checks.runner import SITE, open_context

    ws, _ = failed_run
    project, docs = ws.path("gx_project"), ws.path("data_docs")
    context = open_context(project, docs)
    old = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
           "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)}}
    context.update_data_docs_site(SITE, old)
    shutil.rmtree(docs)
    context.build_data_docs(site_names=[SITE])
    assert "https://code.jquery.com" in (docs / "index.html").read_text(encoding="utf-8")

    open_context(project, docs)
    _assert_site_is_self_contained(docs)
    stamp = (docs / "index.html").stat().st_mtime_ns
    open_context(project, docs)  # an up-to-date config rebuilds nothing
    assert (docs / "index.html").stat().st_mtime_ns == stamp


# ---------------------------------------------------------------- Data Docs from the real gates


def _open_index(browser, index: Path, shot: Path) -> OfflinePage:
    offline = OfflinePage(browser)
    page = offline.open(index)
    page.wait_for_selector("#saviorrec-runs")
    page.screenshot(path=str(shot), full_page=True)
    return offline


def _rows(page) -> list[dict]:
    rows = []
    for row in page.query_selector_all("#saviorrec-runs tbody tr"):
        cells = [c.inner_text().strip() for c in row.query_selector_all("td")]
        rows.append({"status": cells[0], "suite": cells[1], "run": cells[2]})
    return rows


def test_clean_run_index_shows_every_suite_passing(browser, tiny_pipeline, tmp_path_factory, tmp_path):
    base, _ = session_base(tiny_pipeline, tmp_path_factory)
    offline = _open_index(browser, base / "reports" / "data_docs" / "index.html", tmp_path / "clean.png")
    page = offline.page
    rows = _rows(page)
    assert sorted(r["suite"] for r in rows) == sorted(SUITES)
    assert {r["status"] for r in rows} == {"Succeeded"}
    assert "0 failed" in page.inner_text("#saviorrec-index")
    assert (tmp_path / "clean.png").stat().st_size > 0
    offline.assert_offline()
    offline.close()


def test_failed_run_index_and_page_show_the_failures(browser, tiny_pipeline, tmp_path_factory, tmp_path):
    base, _ = session_base(tiny_pipeline, tmp_path_factory)
    ws = copy_of(base, tmp_path / "ws")
    defect = next(d for d in DEFECTS if d.name == "ctr_collapse")
    defect.apply(ws)

    with pytest.raises(StageError):
        run_stage("validate_logs", ws)
    offline = _open_index(browser, ws.path("data_docs") / "index.html", tmp_path / "failed.png")
    page = offline.page
    rows = _rows(page)
    failed = [r for r in rows if r["status"] == "Failed"]
    assert [r["suite"] for r in failed] == ["validate_logs.days"]
    assert failed[0]["run"].startswith(f"{GATE_LOGS}-")
    # the clean run of the same day is still listed beside it (results kept per run)
    assert sum(r["suite"] == "validate_logs.days" for r in rows) == 2

    page.click("#saviorrec-runs tr.saviorrec-failed a")
    page.wait_for_load_state("load")
    text = page.inner_text("body")
    page.screenshot(path=str(tmp_path / "failed_days.png"), full_page=True)
    assert "ctr_ratio" in text
    statuses = [r["status"] for r in _results(page)]
    assert statuses[0] == "FAILED" and "passed" in statuses
    assert statuses == sorted(statuses, key=lambda s: s != "FAILED")  # every failure above every pass
    offline.assert_offline()
    offline.close()


# ---------------------------------------------------------------- dvc plots show


def _repo_html_template() -> Path:
    """The HTML template the repository's .dvc/config names (paths in it are relative to .dvc/)."""
    from configobj import ConfigObj

    value = ConfigObj(str(REPO / ".dvc" / "config")).get("plots", {}).get("html_template")
    assert value, ".dvc/config sets no plots.html_template: `dvc plots show` would load vega from a CDN"
    return (REPO / ".dvc" / value).resolve()


@pytest.mark.timeout(180)
def test_dvc_plots_render_offline(browser, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=project, check=True, timeout=60)
    subprocess.run([*dvc, "config", "plots.html_template", str(_repo_html_template())],
                   cwd=project, check=True, timeout=60)
    # the three kinds of Vega plot the pipeline declares: horizontal bars, scatter, line
    (project / "auc_by_bucket.csv").write_text("bucket,ctr_auc\nhead,0.71\ntorso,0.66\nlong_tail,0.61\n")
    (project / "calibration.csv").write_text("mean_p_ctr,observed_ctr\n0.05,0.04\n0.15,0.17\n0.3,0.28\n")
    (project / "training.csv").write_text("step,loss\n1,0.9\n2,0.7\n3,0.6\n")
    (project / "dvc.yaml").write_text(
        "plots:\n"
        "  - auc_by_bucket.csv: {x: ctr_auc, y: bucket, template: bar_horizontal}\n"
        "  - calibration.csv: {x: mean_p_ctr, y: observed_ctr, template: scatter}\n"
        "  - training.csv: {x: step, y: loss}\n")
    subprocess.run([*dvc, "plots", "show", "-q"], cwd=project, check=True, timeout=120)

    offline = OfflinePage(browser)
    page = offline.open(project / "dvc_plots" / "index.html")
    offline.assert_offline()
    # vega draws each chart into a canvas (or svg) of class "marks" inside the vega-embed container
    page.wait_for_function("document.querySelectorAll('.vega-embed .marks').length >= 3", timeout=20_000)
    sizes = page.eval_on_selector_all(".vega-embed .marks",
                                      "els => els.map(e => [e.clientWidth, e.clientHeight])")
    assert len(sizes) == 3 and all(w > 50 and h > 50 for w, h in sizes), sizes
    page.screenshot(path=str(tmp_path / "dvc_plots.png"), full_page=True)
    offline.assert_offline()
    offline.close()
