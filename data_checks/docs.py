"""A Data Docs index that a reviewer can read offline.

GX's index page draws its table of validation runs with jQuery and bootstrap-table loaded
from public CDNs, so on a machine without internet it shows an empty page. This site
index builder (plugged in through the site's ``site_index_builder.module_name``) lets GX
build its page as usual, then inserts a plain HTML table of every run, newest first, with
its suite, run name (gate and day), time, status and a link to the result page.
"""

from __future__ import annotations

import html
import re

from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

MARKER = "<!-- saviorrec-static-index -->"


def _row(link: dict) -> str:
    status = "Succeeded" if link.get("validation_success") else "Failed"
    css = "text-success" if status == "Succeeded" else "text-danger"
    return (
        f'<tr class="saviorrec-run saviorrec-{status.lower()}">'
        f"<td class=\"{css} saviorrec-status\">{status}</td>"
        f"<td class=\"saviorrec-suite\">{html.escape(str(link.get('expectation_suite_name')))}</td>"
        f"<td>{html.escape(str(link.get('run_name')))}</td>"
        f"<td>{html.escape(str(link.get('run_time')))}</td>"
        f"<td><a href=\"{html.escape(str(link.get('filepath')))}\">result</a></td></tr>"
    )


def static_index(links: list[dict]) -> str:
    rows = sorted(links, key=lambda ln: str(ln.get("run_time")), reverse=True)
    failed = sum(1 for ln in links if not ln.get("validation_success"))
    return (
        f'{MARKER}<div class="container saviorrec-index" id="saviorrec-index">'
        f"<h2>saviorrec validation runs</h2>"
        f'<p class="saviorrec-summary">{len(links)} validation results, {failed} failed.</p>'
        '<table class="table table-sm" id="saviorrec-runs"><thead><tr><th>Status</th><th>Suite</th>'
        "<th>Run (gate-day)</th><th>Run time</th><th>Details</th></tr></thead><tbody>"
        + "".join(_row(ln) for ln in rows)
        + "</tbody></table></div>"
    )


class OfflineSiteIndexBuilder(DefaultSiteIndexBuilder):
    def build(self, skip_and_clean_missing=True, build_index: bool = True):
        url, links = super().build(skip_and_clean_missing=skip_and_clean_missing, build_index=build_index)
        if not build_index or links is None:
            return url, links
        backend = self.target_store.store_backends["index_page"]
        page = backend.get(())
        if isinstance(page, bytes):
            page = page.decode("utf-8")
        table = static_index(links.get("validations_links", []))
        page = re.sub(r"<body([^>]*)>", lambda m: f"<body{m.group(1)}>{table}", page, count=1)
        url = self.target_store.write_index_page(page)
        return url, links
