"""Data Docs pages that load their CSS, JS and fonts from the site itself, not from CDNs.

GX's page templates load bootstrap, jQuery, bootstrap-table, font-awesome, vega, ... from public
CDNs, so offline a page loses its styling and icons. The libraries are vendored, at the versions
GX asks for, under ``report_assets/`` (see ``scripts/vendor_report_assets.sh`` and its MANIFEST);
each page written to the site gets its CDN tags replaced by relative links to a copy of them in
``static/vendor/`` inside the site, so the site works when copied anywhere.
"""

from __future__ import annotations

import filecmp
import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger("saviorrec.checks")

ASSETS = Path(__file__).with_name("report_assets")
SITE_FOLDER = "static/vendor"                 # where the copy lives inside a Data Docs site
SKIP = {"dvc_plots_template.html"}            # the DVC plots page template carries its own inline copy
REPORT_CSS = "saviorrec-report.css"           # our own styling (failures in colour), loaded after bootstrap

# CDN address in GX's templates -> the vendored files that replace it.
CDN = {
    "https://cdn.jsdelivr.net/npm/vega@5": ["vega/vega.min.js"],
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ["vega-lite/vega-lite.min.js"],
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ["vega-embed/vega-embed.min.js"],
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        ["fontawesome/css/fontawesome.min.css", "fontawesome/css/solid.min.css", "fontawesome/css/regular.min.css"],
    "https://code.jquery.com/jquery-3.7.1.min.js": ["jquery/jquery.min.js"],
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": ["popper.js/popper.min.js"],
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": ["bootstrap/bootstrap.min.js"],
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": ["bootstrap/bootstrap.min.css", REPORT_CSS],
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": ["bootstrap-table/bootstrap-table.min.js"],
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": ["bootstrap-table/bootstrap-table.min.css"],
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        ["bootstrap-table/bootstrap-table-filter-control.min.js"],
    # GX's pages ask for the 1.19.0 extension CSS beside the 1.19.1 table; one vendored copy serves both
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        ["bootstrap-table/bootstrap-table-filter-control.min.css"],
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        ["bootstrap-table/bootstrap-table-filter-control.min.css"],
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        ["bootstrap-datepicker/bootstrap-datepicker.min.css"],
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        ["bootstrap-datepicker/bootstrap-datepicker.min.js"],
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        ["bootstrap-dark/bootstrap-prefers-dark.min.css"],
}
# The navbar logo is fetched from GX's S3 bucket with the context id in the query (a usage beacon);
# GX copies the same image into the site's static/images.
LOGO = re.compile(r'src="https://great-expectations-web-assets\.s3[^"]*/logo-long\.png[^"]*"')
# GX links the favicon one folder short on validation pages; point it at the site's copy.
FAVICON = re.compile(r'href="(?:\./|(?:\.\./)*)static/images/favicon\.ico"')

_TAG = re.compile(r'<script\b[^>]*\bsrc="(https?://[^"]+)"[^>]*>\s*</script>|<link\b[^>]*\bhref="(https?://[^"]+)"[^>]*/?>')


def _local_tags(files: list[str], prefix: str) -> str:
    tags = []
    for name in files:
        href = f"{prefix}{SITE_FOLDER}/{name}"
        tags.append(f'<link rel="stylesheet" href="{href}">' if name.endswith(".css")
                    else f'<script src="{href}"></script>')
    return "".join(tags)


def localize(page: str, depth: int) -> str:
    """``page`` with every known CDN tag pointing at the site's vendored copy.

    ``depth`` is how many folders below the site root the page lives (0 for index.html).
    An unknown external script or stylesheet is left alone and named in the log, so a GX
    upgrade that adds one shows up (the offline browser test fails on its request).
    """
    prefix = "../" * depth

    def swap(match: re.Match) -> str:
        url = match.group(1) or match.group(2)
        files = CDN.get(url)
        if files is None:
            if match.group(2) and "stylesheet" not in match.group(0):
                return match.group(0)       # a plain link (an icon, ...) that the page can do without
            log.warning("Data Docs page loads %s, which is not vendored; it will not load offline", url)
            return match.group(0)
        return _local_tags(files, prefix)

    page = _TAG.sub(swap, page)
    page = FAVICON.sub(f'href="{prefix}static/images/favicon.ico"', page)
    return LOGO.sub(f'src="{prefix}static/images/logo-long.png"', page)


def copy_assets(site_root: Path) -> None:
    """Put the vendored files (with their licenses and MANIFEST) into ``site_root/static/vendor``.

    Files already there and identical are left untouched, so a rebuild costs a few stat calls.
    """
    target = site_root / SITE_FOLDER
    for source in ASSETS.rglob("*"):
        if not source.is_file() or source.name in SKIP:
            continue
        dest = target / source.relative_to(ASSETS)
        if dest.is_file() and filecmp.cmp(source, dest, shallow=True):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
