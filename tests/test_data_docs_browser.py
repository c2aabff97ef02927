"""Data Docs in a real browser: a clean run's index shows every suite passing, a failed run's the failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import DEFECTS, GATE_LOGS, copy_of, session_base

from saviorrec.stages import run_stage
from saviorrec.workspace import StageError

CHROMIUM = Path("/usr/bin/chromium")
SUITES = ["validate_logs.days", "validate_logs.events", "validate_logs.catalog", "validate_sids.items",
          "validate_sids.summary", "validate_sids.levels", "validate_model.predictions", "validate_model.summary"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason="headless Chromium not installed at /usr/bin/chromium (run `make system-deps`)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM),
                                      args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def _open(browser, index: Path, shot: Path):
    page = browser.new_page()
    # Offline like a reviewer's laptop on a plane: only local files load (GX pulls its JS from CDNs).
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else route.abort())
    page.goto(index.as_uri())
    page.wait_for_selector("#saviorrec-runs")
    page.screenshot(path=str(shot), full_page=True)
    return page


def _rows(page) -> list[dict]:
    rows = []
    for row in page.query_selector_all("#saviorrec-runs tbody tr"):
        cells = [c.inner_text().strip() for c in row.query_selector_all("td")]
        rows.append({"status": cells[0], "suite": cells[1], "run": cells[2]})
    return rows


def test_clean_run_index_shows_every_suite_passing(browser, tiny_pipeline, tmp_path_factory, tmp_path):
    base, _ = session_base(tiny_pipeline, tmp_path_factory)
    page = _open(browser, base / "reports" / "data_docs" / "index.html", tmp_path / "clean.png")
    rows = _rows(page)
    assert sorted(r["suite"] for r in rows) == sorted(SUITES)
    assert {r["status"] for r in rows} == {"Succeeded"}
    assert "0 failed" in page.inner_text("#saviorrec-index")
    assert (tmp_path / "clean.png").stat().st_size > 0
    page.close()


def test_failed_run_index_and_page_show_the_failures(browser, tiny_pipeline, tmp_path_factory, tmp_path):
    base, _ = session_base(tiny_pipeline, tmp_path_factory)
    ws = copy_of(base, tmp_path / "ws")
    defect = next(d for d in DEFECTS if d.name == "ctr_collapse")
    defect.apply(ws)

    with pytest.raises(StageError):
        run_stage("validate_logs", ws)
    page = _open(browser, ws.path("data_docs") / "index.html", tmp_path / "failed.png")
    rows = _rows(page)
    failed = [r for r in rows if r["status"] == "Failed"]
    assert [r["suite"] for r in failed] == ["validate_logs.days"]
    assert failed[0]["run"].startswith(f"{GATE_LOGS}-")
    # the clean run of the same day is still listed beside it (results kept per run)
    assert sum(r["suite"] == "validate_logs.days" for r in rows) == 2

    page.click("#saviorrec-runs tr.saviorrec-failed a")
    page.wait_for_load_state()
    text = page.inner_text("body")
    page.screenshot(path=str(tmp_path / "failed_days.png"), full_page=True)
    assert "ctr_ratio" in text
    assert "Failed" in text or "failed" in text
    page.close()
