#!/usr/bin/env bash
# Hostile-input runs against a real `tweetmeet serve`: hostile.py (hand-made
# hostile requests) and fuzz.py (schemathesis in GraphQL mode), on SQLite and,
# with TWEETMEET_TEST_POSTGRES_URL set or --postgres URL, on PostgreSQL too.
#
#   bench/hostile/run.sh [--quick] [--postgres URL] [--server PATH] [--no-schemathesis]
#
# --quick: about 700 hostile requests and about 180 schemathesis test cases
# per identity (CI, under a minute for both databases); otherwise every
# hostile case (about 9,000 requests) and about 4,000 schemathesis test
# cases per identity (anonymous, signed in).
# The server is $CARGO_TARGET_DIR/debug/tweetmeet (or target/debug/tweetmeet):
# build it first (cargo build, or cargo test). schemathesis is installed
# once into $CARGO_TARGET_DIR/fuzz-venv. Exits non-zero if any run counts a
# 5xx, an INTERNAL error, a timeout or a panic.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

quick=()
postgres="${TWEETMEET_TEST_POSTGRES_URL:-}"
server="$target/debug/tweetmeet"
schemathesis=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --postgres) postgres="$2"; shift ;;
    --server) server="$2"; shift ;;
    --no-schemathesis) schemathesis=0 ;;
    *) echo "usage: $0 [--quick] [--postgres URL] [--server PATH] [--no-schemathesis]" >&2; exit 2 ;;
  esac
  shift
done

venv="$target/fuzz-venv"
# Pinned: schemathesis' CLI flags and report format differ between majors.
st_version="4.32.5"
if [[ $schemathesis == 1 ]] && ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$st_version"; then
  echo "installing schemathesis $st_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --root-user-action=ignore "schemathesis==$st_version"
fi

backends=("")
[[ -n "$postgres" ]] && backends+=("$postgres")

status=0
summary=()
for backend in "${backends[@]}"; do
  args=(--server "$server" "${quick[@]}")
  [[ -n "$backend" ]] && args+=(--postgres "$backend")
  name="${backend:+postgres}"; name="${name:-sqlite}"
  out="$(mktemp)"
  python3 "$here/hostile.py" "${args[@]}" 2>&1 | tee "$out" || status=1
  summary+=("$name $(grep '^hostile:' "$out" || echo 'hostile: did not finish')")
  if [[ $schemathesis == 1 ]]; then
    python3 "$here/fuzz.py" --schemathesis "$venv/bin/schemathesis" "${args[@]}" 2>&1 | tee "$out" || status=1
    summary+=("$name $(grep '^schemathesis:' "$out" || echo 'schemathesis: did not finish')")
  fi
  rm -f "$out"
done

echo "== hostile-input runs${quick:+ (quick)}"
printf '%s\n' "${summary[@]}"
exit $status
