"""The Data Docs site a reviewer reads offline, failures first.

- ``site_config``: our site, wired to the three pieces below.
- ``OfflineSiteStoreBackend``: every page written to the site (checkpoint action or full rebuild)
  loads its CSS/JS/fonts from a vendored copy inside the site (``offline_assets``) and marks each
  failed expectation with a red row and a FAILED badge in plain text (no icon font needed).
- ``FailuresFirstValidationResultsPageRenderer``: on a validation page the sections with a failed
  expectation come first (after the run's overview) and, within a section, failed rows first.
- ``OfflineSiteIndexBuilder``: GX's index draws its table of runs with JavaScript; this builder adds
  a plain HTML table of every run, newest first, with status, suite, run name, time and a link.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path

from great_expectations.data_context.store import TupleFilesystemStoreBackend
from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

from data_checks import offline_assets

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


def site_config(docs_dir: Path) -> dict:
    """The Data Docs site config (kept in the GX project, so rebuilds use it too)."""
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "site_index_builder": {"class_name": "OfflineSiteIndexBuilder", "module_name": "data_checks.docs"},
        "site_section_builders": {"validations": {"renderer": {
            "class_name": "FailuresFirstValidationResultsPageRenderer", "module_name": "data_checks.docs"}}},
        "store_backend": {"class_name": "OfflineSiteStoreBackend", "module_name": "data_checks.docs",
                          "base_directory": str(docs_dir.resolve())},
    }


def _passed(evr) -> bool:
    return bool(evr.success)


class FailuresFirstValidationResultsPageRenderer(ValidationResultsPageRenderer):
    """GX's validation page, with failed expectations and the sections holding them on top."""

    def _group_evrs_by_column_with_suite_meta(self, validation_results, expectation_suite_name):
        columns = super()._group_evrs_by_column_with_suite_meta(validation_results, expectation_suite_name)
        return defaultdict(list, {name: sorted(evrs, key=_passed) for name, evrs in columns.items()})

    def _collect_rendered_document_content_sections(self, validation_results, overview_content_blocks,
                                                    collapse_content_blocks, columns):
        sections = super()._collect_rendered_document_content_sections(
            validation_results, overview_content_blocks, collapse_content_blocks, columns)
        failing = {name for name, evrs in columns.items() if not all(_passed(e) for e in evrs)}
        overview, rest = sections[:1], sections[1:]
        return overview + sorted(rest, key=lambda section: section.section_name not in failing)  # stable


# GX renders a result's status cell as an icon only (font-awesome); offline, or printed, or for a
# colour-blind reader, the icon alone says little. Each status icon in a results table gets a text
# badge, and a failed row a class that colours it (see report_assets/saviorrec-report.css).
_STATUS_CELL = re.compile(
    r'(?P<row><tr>)(?P<cell>\s*<td id="[^"]*-cell-\d+-1"[^>]*>\s*<div class="show-scrollbars">\s*<span\s*>\s*)'
    r'(?P<icon><i class="fas (?P<kind>fa-times text-danger|fa-check-circle text-success)"\s*></i>)'
)


def _badge(match: re.Match) -> str:
    failed = match["kind"].startswith("fa-times")
    row = '<tr class="saviorrec-failed-row">' if failed else '<tr class="saviorrec-passed-row">'
    badge = ('<span class="saviorrec-badge saviorrec-badge-failed">FAILED</span>' if failed
             else '<span class="saviorrec-badge saviorrec-badge-passed">passed</span>')
    return f"{row}{match['cell']}{match['icon']} {badge}"


def mark_failures(page: str) -> str:
    return _STATUS_CELL.sub(_badge, page)


class OfflineSiteStoreBackend(TupleFilesystemStoreBackend):
    """The site's file store: HTML pages are made offline-ready and failure-marked as they are written."""

    def _set(self, key, value, **kwargs):
        page = Path(self._convert_key_to_filepath(key if isinstance(key, tuple) else key.to_tuple()))
        if page.suffix == ".html" and isinstance(value, str):
            offline_assets.copy_assets(Path(self.full_base_directory))
            value = mark_failures(offline_assets.localize(value, depth=len(page.parts) - 1))
        return super()._set(key, value, **kwargs)
