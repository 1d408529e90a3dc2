#!/usr/bin/env bash
# cli_report.sh: `autodidact report` end to end: the page of a tiny real run
# (default and --out paths, two runs compared, usage and errors), opened in
# headless Chromium: a screenshot, the heatmap's cells and every section in
# the DOM, no console message, no fetch by the page (net-log, with a control
# page that does fetch and log to prove the checks see it), and the page of a
# run still being written. Chromium is the Debian package `chromium`
# (scripts/deps.sh installs it as root); without it the browser checks are
# skipped with the reason printed, the rest still runs.
. "$(dirname "$0")/lib_cli.sh"

cat > "$tmp/tiny.ini" <<'EOF'
; a tiny copy run for the report test
[run]
task = copy
rounds = 2
threads = 1
save_every = 10
[model]
layers = 1
heads = 2
dim = 32
ffn = 64
[base]
levels = 1-3
steps = 30
batch = 16
lr = 0.003
[round]
steps = 20
batch = 16
prompts = 16
[acquire]
samples = 2
[eval]
n = 16
above = 1
EOF

"$AD" run "$tmp/tiny.ini" --out "$tmp/a" --set run.seed=3 > /dev/null 2>&1
check "tiny run exits 0" test $? -eq 0

# the command: default path, --out, several runs, usage and errors
"$AD" report "$tmp/a" > "$tmp/out" 2> "$tmp/err"; check "report exits 0" test $? -eq 0
check "report prints the path it wrote" test "$(cat "$tmp/out")" = "$tmp/a/report.html"
check "report wrote DIR/report.html" test -s "$tmp/a/report.html"
check "the page has no http(s) URL" test "$(grep -c -E 'https?:' "$tmp/a/report.html")" -eq 0
check "the page has no script" test "$(grep -c -i '<script' "$tmp/a/report.html")" -eq 0
"$AD" report "$tmp/a" --out "$tmp/again.html" > /dev/null; check "report --out exits 0" test $? -eq 0
check "the same store gives the same page" cmp -s "$tmp/a/report.html" "$tmp/again.html"
cp -r "$tmp/a" "$tmp/b" && sed -i 's/^lr = 0.003$/lr = 0.002/' "$tmp/b/config.ini"
"$AD" report "$tmp/a" "$tmp/b" --out "$tmp/both.html" > /dev/null
check "report of two runs exits 0" test $? -eq 0
check "two runs: the config diff names base.lr" \
  python3 -c 'import sys; h = open(sys.argv[1]).read(); d = h.split("What differs")[1].split("</table>")[0]; assert "base.lr" in d and "run.seed" not in d' "$tmp/both.html"
"$AD" report --help | grep -q -- '--out'; check "report --help names --out" test $? -eq 0
"$AD" report > /dev/null 2>&1; check "report without DIR: usage (2)" test $? -eq 2
"$AD" report "$tmp/nothing" > /dev/null 2> "$tmp/err"; check "report of no run fails" test $? -eq 1
check "the error names the store" grep -q "$tmp/nothing/run.db" "$tmp/err"
check "a failed report writes nothing" test ! -e "$tmp/nothing/report.html"

# a v1 store is reported without being migrated on disk
cp -r tests/fixtures/store_v1/run "$tmp/v1"
"$AD" report "$tmp/v1" > /dev/null 2>&1; check "report of a v1 run exits 0" test $? -eq 0
check "report leaves a v1 run.db as it was" cmp -s "$tmp/v1/run.db" tests/fixtures/store_v1/run/run.db

# ---- the browser ------------------------------------------------------------
chrome=$(command -v chromium || command -v chromium-browser || true)
browse() { # browse PAGE NAME: screenshot, DOM, console log and net-log into $tmp/NAME.*
  local flags=(--headless=new --disable-gpu --hide-scrollbars --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --disable-default-apps --disable-extensions --user-data-dir="$tmp/profile-$2"
    --host-resolver-rules="MAP * ~NOTFOUND" --log-net-log="$tmp/$2.netlog"
    --enable-logging=stderr --v=0 --window-size=1280,2400
    --screenshot="$tmp/$2.png" --dump-dom)
  [ "$(id -u)" -eq 0 ] && flags+=(--no-sandbox)
  timeout 60 "$chrome" "${flags[@]}" "file://$1" > "$tmp/$2.dom" 2> "$tmp/$2.log"
}
# console messages the page logged (chromium writes them as INFO:CONSOLE lines)
console_lines() { grep -c 'CONSOLE' "$tmp/$1.log"; }
# requests the page made: the net-log's url requests with a real initiator
# (the browser's own background requests have "not an origin")
page_fetches() {
  python3 - "$tmp/$1.netlog" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
urls = {e["params"]["url"] for e in log["events"]
        if "url" in e.get("params", {}) and e["params"].get("initiator", "not an origin") != "not an origin"
        and not e["params"]["url"].startswith("file:")}
print(len(urls))
PY
}
cells_in_dom() { python3 -c 'import re, sys; print(len(re.findall(r"<rect class=\"cell\"", open(sys.argv[1]).read())))' "$1"; }

if [ -z "$chrome" ]; then
  if [ "$(id -u)" -ne 0 ]; then why="not root, so scripts/deps.sh could not install it"
  else why="apt-get could not install it (see scripts/deps.sh)"; fi
  echo "  SKIP: browser checks: chromium is not installed ($why)"
else
  browse "$tmp/a/report.html" page
  check "chromium exits 0" test $? -eq 0
  check "screenshot is a PNG" test "$(head -c 8 "$tmp/page.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a
  check "screenshot is not tiny" test "$(stat -c %s "$tmp/page.png")" -gt 20000
  want=$(sqlite3 "$tmp/a/run.db" "select count(*) from evaluations where metric = 'accuracy' and lineage = 0")
  got=$(cells_in_dom "$tmp/page.dom")
  check "DOM: the heatmap has one cell per evaluation ($got of $want)" test "$got" -eq "$want" -a "$want" -gt 0
  for s in heatmap rounds curves time acceptance config samples; do
    check "DOM: section $s" grep -q "<section id=\"$s\">" "$tmp/page.dom"
  done
  check "DOM: the frontier is drawn" grep -q '<path class="frontier" d="M' "$tmp/page.dom"
  check "DOM: a per-round chart (frontier accuracy)" grep -q 'id="fig-frontier-accuracy"' "$tmp/page.dom"
  check "DOM: a training curve" grep -q 'Training loss (rounds)' "$tmp/page.dom"
  check "no console message ($(console_lines page))" test "$(console_lines page)" -eq 0
  check "the page fetched nothing ($(page_fetches page))" test "$(page_fetches page)" -eq 0
  # the control: a page that fetches and logs must be caught by the same checks
  printf '<!DOCTYPE html><img src="http://example.invalid/x.png"><script>console.error("control")</script>\n' > "$tmp/control.html"
  browse "$tmp/control.html" control
  check "control: its console error is seen" test "$(console_lines control)" -ge 1
  check "control: its fetch is seen" test "$(page_fetches control)" -ge 1
fi

# ---- a run still being written ------------------------------------------------
# (long rounds, about 2 s each on one core, so that round 1 is reported mid-way)
"$AD" run "$tmp/tiny.ini" --out "$tmp/live" --set run.seed=4 --set round.steps=400 \
  > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do # until base training is done and round 1 has begun
  [ -e "$tmp/live/run.db" ] && [ "$(sqlite3 "$tmp/live/run.db" "select count(*) from rounds where status = 'accepted' or round = 1" 2>/dev/null)" = 2 ] && break
  sleep 0.05
done
"$AD" report "$tmp/live" --out "$tmp/live.html" > /dev/null 2> "$tmp/err"; rc=$?
kill -0 $pid 2>/dev/null; alive=$?
check "report of a live run exits 0 ($(cat "$tmp/err"))" test $rc -eq 0
check "the run was still going while reported" test $alive -eq 0
check "the live page says a round is running" grep -q 'running (this page shows its last commit)' "$tmp/live.html"
check "the live page has the base row" test "$(cells_in_dom "$tmp/live.html")" -gt 0
check "the live page parses as HTML with whole SVGs" python3 - "$tmp/live.html" <<'PY'
import html.parser, re, sys, xml.etree.ElementTree as ET
text = open(sys.argv[1], encoding="utf-8").read()
html.parser.HTMLParser().feed(text)
for s in re.findall(r"<svg\b.*?</svg>", text, re.S):
    ET.fromstring(s)
assert text.rstrip().endswith("</html>")
PY
if [ -n "$chrome" ]; then
  browse "$tmp/live.html" live
  check "live page: chromium exits 0" test $? -eq 0
  check "live page: every section in the DOM" test "$(grep -o '<section id=' "$tmp/live.dom" | wc -l)" -eq 7
  check "live page: no console message" test "$(console_lines live)" -eq 0
fi
wait $pid; check "the live run finishes (status 0)" test $? -eq 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
