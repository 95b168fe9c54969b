#!/usr/bin/env bash
# Render the HTML report of the seed study in real headless Chromium and check
# the result:
#   1. build sweep, run studies/seed-moe.toml, write `sweep report`;
#   2. load report.html in Chromium (--dump-dom): the page's inline script
#      records how many embedded charts the browser decoded; all must be;
#   3. take a 1280x2000 screenshot and keep it (its path is printed);
#   4. check the screenshot is not blank (go test ./analysis -run TestScreenshot).
# Installs Debian's chromium when it is missing (needs root).
#
# Usage: bash .ci/chromium-test.sh [OUT]   (default OUT: results/ci-report)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-$root/results/ci-report}
mkdir -p "$out"
out=$(cd "$out" && pwd)

say() { printf 'chromium-test: %s\n' "$*"; }
die() { say "error: $*" >&2; exit 1; }

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  [ "$(id -u)" = 0 ] || die "chromium is not installed and this is not root (apt-get install chromium)"
  say "installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show --no-all-versions chromium >/dev/null 2>&1 || apt-get update -q
  apt-get install -y -q chromium
  browser=$(command -v chromium) || die "chromium did not install"
fi
say "$("$browser" --version 2>/dev/null | head -1)"

t0=$SECONDS
bin="$out/sweep"
go build -o "$bin" ./cmd/sweep
rm -rf "$out/dataset" "$out/report"
"$bin" run studies/seed-moe.toml --out "$out/dataset" --progress none --quiet
"$bin" report "$out/dataset" -o "$out/report" > "$out/summary.txt"
page="$out/report/report.html"
[ -s "$page" ] || die "no $page"
charts=$(grep -c 'data-chart=' "$page" || true)
say "report: $page ($charts charts)"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$profile" --window-size=1280,2000)

# 2. every embedded chart decodes in the browser
# (--enable-logging=stderr puts the page's console messages in the log)
timeout 180 "$browser" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$page" > "$out/dom.html" 2> "$out/chromium-dom.log" ||
  die "chromium --dump-dom failed; see $out/chromium-dom.log"
loaded=$(grep -o 'data-charts-loaded="[0-9]*/[0-9]*"' "$out/dom.html" | head -1 | sed 's/.*="\(.*\)"/\1/')
[ -n "$loaded" ] || die "the page's load script did not run (no data-charts-loaded in $out/dom.html)"
[ "$loaded" = "$charts/$charts" ] || die "Chromium decoded $loaded charts, want $charts/$charts"
say "Chromium decoded $loaded charts"
# the page logs nothing itself: any console message is an error
if grep -E ':CONSOLE|Uncaught|ERR_FILE_NOT_FOUND|Failed to load resource|Not allowed to load' "$out/chromium-dom.log"; then
  die "Chromium reported page errors (above; full log $out/chromium-dom.log)"
fi

# 3. screenshot, kept
shot="$out/screenshot.png"
rm -f "$shot"
timeout 180 "$browser" "${flags[@]}" --screenshot="$shot" "file://$page" 2> "$out/chromium-shot.log" ||
  die "chromium --screenshot failed; see $out/chromium-shot.log"
[ -s "$shot" ] || die "no screenshot written; see $out/chromium-shot.log"

# 4. not blank
if ! go test -v -count=1 -run '^TestScreenshot$' ./analysis -args -screenshot="$shot" > "$out/screenshot-check.log" 2>&1; then
  cat "$out/screenshot-check.log"
  die "the screenshot looks blank or broken: $shot"
fi
grep -E 'non-white' "$out/screenshot-check.log" | sed 's/^ *//' || true
say "screenshot: $shot"
say "done in $((SECONDS - t0)) s"
