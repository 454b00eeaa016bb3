#!/bin/sh
# report_chromium.sh REPORT.html OUTDIR — renders an HTML report as a person
# sees it, in headless Chromium (Debian's `chromium`, installed with a CJK
# font by `tests/deps.sh report` when missing, as CI does on a clean machine):
#   OUTDIR/report.png   the first A4 page (794 x 1123 CSS px, 96 dpi)
#   OUTDIR/report.pdf   the report printed (A4 portrait by its @page rule)
#   OUTDIR/dom.html     the DOM Chromium built (--dump-dom), of a copy of the
#                       report with a probe appended that records on <body>
#                       how many elements reach out of the body, whose width
#                       is A4's printable width (data-overflow, data-body-width)
# test_report.c reads both. Exit status 0, or 1 when Chromium failed.
set -eu
html=$1
out=$2
here=$(dirname "$0")
mkdir -p "$out"
if ! command -v chromium >/dev/null 2>&1 || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    sh "$here/../deps.sh" report
fi
profile=$(mktemp -d /tmp/cw-chromium-XXXXXX)
trap 'rm -rf "$profile"' EXIT
# no network at all: every fetch would be a fault of the report
chrome() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --disable-default-apps --no-default-browser-check --mute-audio \
        --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$profile" \
        --hide-scrollbars --force-device-scale-factor=1 --window-size=794,1123 "$@"
}
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
chrome --screenshot="$out/report.png" "file://$abs" >"$out/chromium.log" 2>&1 || { cat "$out/chromium.log" >&2; exit 1; }
chrome --no-pdf-header-footer --print-to-pdf="$out/report.pdf" "file://$abs" >>"$out/chromium.log" 2>&1 || {
    cat "$out/chromium.log" >&2
    exit 1
}
# the probe: the report has no script of its own; this copy gets one
probe="$out/probe.html"
cp "$abs" "$probe"
cat >>"$probe" <<'JS'
<script>
(function () {
  /* the body is the printable width of A4 (186 mm): nothing may leave it */
  var b = document.body.getBoundingClientRect(), out = 0, what = '';
  var all = document.body.getElementsByTagName('*');
  for (var i = 0; i < all.length; i++) {
    var r = all[i].getBoundingClientRect();
    if (r.width && (r.right > b.right + 0.5 || r.left < b.left - 0.5)) { out++; if (!what) what = all[i].tagName + '#' + all[i].id; }
  }
  document.body.setAttribute('data-body-width', String(Math.round(b.width)));
  document.body.setAttribute('data-scroll-width', String(document.documentElement.scrollWidth));
  document.body.setAttribute('data-overflow', String(out));
  document.body.setAttribute('data-overflow-first', what);
})();
</script>
JS
chrome --dump-dom "file://$(cd "$out" && pwd)/probe.html" >"$out/dom.html" 2>>"$out/chromium.log" || { cat "$out/chromium.log" >&2; exit 1; }
[ -s "$out/report.png" ] && [ -s "$out/dom.html" ]
