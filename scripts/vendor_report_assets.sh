#!/usr/bin/env bash
# Vendor the CSS/JS/fonts that Data Docs and `dvc plots show` load from CDNs, so reports render offline.
#
# Each library is fetched at a pinned version from the npm registry with `npm pack`; the tarball's
# sha512 must equal the pin below (and what the registry reports) before anything is copied. Only the
# minified files the pages use are kept, with the library's license, under data_checks/report_assets/.
# The same run writes the DVC plots HTML template with vega, vega-lite and vega-embed inlined, so the
# plots page works wherever it is copied.
#
# Usage: scripts/vendor_report_assets.sh        (needs npm and the registry; run when changing a pin)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/data_checks/report_assets"
TEMPLATE="$DEST/dvc_plots_template.html"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# folder | npm package@version | sha512 of the tarball (npm "integrity") | files to keep (path in the package:name here)
PINS=$(cat <<'EOF'
jquery|jquery@3.7.1|sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==|dist/jquery.min.js:jquery.min.js
popper.js|popper.js@1.12.9|sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==|dist/umd/popper.min.js:popper.min.js
bootstrap|bootstrap@4.3.1|sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==|dist/css/bootstrap.min.css:bootstrap.min.css dist/js/bootstrap.min.js:bootstrap.min.js
bootstrap-table|bootstrap-table@1.19.1|sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==|dist/bootstrap-table.min.css:bootstrap-table.min.css dist/bootstrap-table.min.js:bootstrap-table.min.js dist/extensions/filter-control/bootstrap-table-filter-control.min.css:bootstrap-table-filter-control.min.css dist/extensions/filter-control/bootstrap-table-filter-control.min.js:bootstrap-table-filter-control.min.js
bootstrap-datepicker|bootstrap-datepicker@1.9.0|sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==|dist/css/bootstrap-datepicker.min.css:bootstrap-datepicker.min.css dist/js/bootstrap-datepicker.min.js:bootstrap-datepicker.min.js
bootstrap-dark|@forevolve/bootstrap-dark@1.1.0|sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==|dist/css/bootstrap-prefers-dark.min.css:bootstrap-prefers-dark.min.css
fontawesome|@fortawesome/fontawesome-free@6.6.0|sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==|css/fontawesome.min.css:css/fontawesome.min.css css/solid.min.css:css/solid.min.css css/regular.min.css:css/regular.min.css webfonts/fa-solid-900.woff2:webfonts/fa-solid-900.woff2 webfonts/fa-regular-400.woff2:webfonts/fa-regular-400.woff2
vega|vega@5.33.1|sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==|build/vega.min.js:vega.min.js
vega-lite|vega-lite@5.23.0|sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==|build/vega-lite.min.js:vega-lite.min.js
vega-embed|vega-embed@6.29.0|sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==|build/vega-embed.min.js:vega-embed.min.js
EOF
)

# Two tarballs ship no license file; their package.json names the license, and the text is the standard one.
missing_license() {
  case "$1" in
    vega) printf '%s\n' "vega is released under the BSD-3-Clause license (package.json \"license\"; the npm tarball carries no license file)." "" \
      "Copyright (c) 2015-2024, University of Washington Interactive Data Lab" "All rights reserved." "" \
      "Redistribution and use in source and binary forms, with or without modification, are permitted provided that the following conditions are met:" "" \
      "1. Redistributions of source code must retain the above copyright notice, this list of conditions and the following disclaimer." "" \
      "2. Redistributions in binary form must reproduce the above copyright notice, this list of conditions and the following disclaimer in the documentation and/or other materials provided with the distribution." "" \
      "3. Neither the name of the copyright holder nor the names of its contributors may be used to endorse or promote products derived from this software without specific prior written permission." "" \
      "THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS \"AS IS\" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE." ;;
    popper.js) printf '%s\n' "popper.js is released under the MIT license (package.json \"license\" and the header of popper.min.js; the npm tarball carries no license file)." "" \
      "Copyright (C) Federico Zivolo 2017" "" \
      "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the \"Software\"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:" "" \
      "The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software." "" \
      "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE." ;;
    *) echo "no license file in the $1 tarball and no known text for it" >&2; return 1 ;;
  esac
}

mkdir -p "$DEST"
MANIFEST="$WORK/MANIFEST.tsv"
printf 'folder\tpackage\tversion\tlicense\tintegrity\tfiles\n' > "$MANIFEST"

while IFS='|' read -r folder spec pinned files; do
  [ -n "$folder" ] || continue
  pkg_dir="$WORK/$folder"
  mkdir -p "$pkg_dir"
  (cd "$pkg_dir" && npm pack "$spec" --json --silent > pack.json)
  tarball="$pkg_dir/$(node -e 'console.log(require(process.argv[1])[0].filename)' "$pkg_dir/pack.json")"
  registry=$(node -e 'console.log(require(process.argv[1])[0].integrity)' "$pkg_dir/pack.json")
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$pinned" ] || [ "$registry" != "$pinned" ]; then
    echo "$spec: tarball sha512 $actual (registry says $registry) does not match the pin $pinned" >&2
    exit 1
  fi
  tar xzf "$tarball" -C "$pkg_dir"
  version=$(node -e 'console.log(require(process.argv[1]).version)' "$pkg_dir/package/package.json")
  license=$(node -e 'console.log(require(process.argv[1]).license)' "$pkg_dir/package/package.json")

  out="$WORK/out/$folder"
  mkdir -p "$out"
  kept=()
  for pair in $files; do
    src="${pair%%:*}"; dst="${pair#*:}"
    mkdir -p "$out/$(dirname "$dst")"
    cp "$pkg_dir/package/$src" "$out/$dst"
    kept+=("$dst")
  done
  license_file=$(cd "$pkg_dir/package" && ls | grep -i -m1 -E '^licen[cs]e' || true)
  if [ -n "$license_file" ]; then cp "$pkg_dir/package/$license_file" "$out/LICENSE"; else missing_license "$folder" > "$out/LICENSE"; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$folder" "${spec%@*}" "$version" "$license" "$pinned" "${kept[*]}" >> "$MANIFEST"
  echo "vendored $spec ($license)"
done <<< "$PINS"

# The DVC plots page: DVC's default page loads vega from a CDN through its {scripts} placeholder;
# this template leaves {scripts} out and carries the three libraries inline instead.
out="$WORK/out"
{
  printf '%s\n' '<!DOCTYPE html>' '<html>' '<head>' '    {refresh_tag}' '    <meta charset="utf-8">' '    <title>DVC Plot</title>'
  for lib in vega/vega.min.js vega-lite/vega-lite.min.js vega-embed/vega-embed.min.js; do
    if grep -q -i -F -e '</script' -e '{plot_divs}' -e '{scripts}' -e '{refresh_tag}' "$out/$lib"; then
      echo "$lib contains text that would break the inline template" >&2; exit 1
    fi
    printf '    <script type="text/javascript">/* %s, see data_checks/report_assets/%s/LICENSE */\n' "$lib" "$(dirname "$lib")"
    cat "$out/$lib"
    printf '\n    </script>\n'
  done
  printf '%s\n' '    <style>' '        table {' '            border-spacing: 15px;' '        }' '    </style>' '</head>' '<body>' '    {plot_divs}' '</body>' '</html>'
} > "$WORK/dvc_plots_template.html"

# Replace the vendored folders only (saviorrec-report.css beside them is ours, not vendored).
while IFS='|' read -r folder _; do
  [ -n "$folder" ] || continue
  rm -rf "${DEST:?}/$folder"
  cp -r "$out/$folder" "$DEST/$folder"
done <<< "$PINS"
cp "$MANIFEST" "$DEST/MANIFEST.tsv"
cp "$WORK/dvc_plots_template.html" "$TEMPLATE"
echo "vendored into $DEST ($(du -sk "$DEST" | cut -f1) KB)"
