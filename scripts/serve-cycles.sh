#!/usr/bin/env bash
# Starts and stops `reel serve` N times (default 1000) on a small store in a temporary
# folder: each cycle connects once (nbdinfo, or a qemu-io write every other cycle), then
# stops the server with SIGTERM (every third cycle SIGINT) and checks it exited 0. Counts
# and prints every other exit status; exits 1 if there was any. Catches shutdown races
# (threads outliving the server) that show up once in dozens or hundreds of stops.
#
# Usage: scripts/serve-cycles.sh [N]    (REEL=path/to/reel, default .build/debug/reel)
set -euo pipefail

cycles=${1:-1000}
reel=${REEL:-"$(cd "$(dirname "$0")/.." && pwd)/.build/debug/reel"}
[ -x "$reel" ] || { echo "no reel at $reel (build first, or set REEL)" >&2; exit 2; }
for tool in nbdinfo qemu-io; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/setup-debian.sh)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/reel-serve-cycles-XXXXXX)
server=
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server"; fi
  rm -rf "$work"
}
trap cleanup EXIT

store=$work/store
socket=$work/nbd.sock
"$reel" init --store "$store" >/dev/null
"$reel" volume create vm --size 4M --store "$store" >/dev/null

failures=0
for ((cycle = 1; cycle <= cycles; cycle++)); do
  signal=TERM
  if ((cycle % 3 == 0)); then signal=INT; fi
  : >"$work/serve.out"
  "$reel" serve vm --store "$store" --socket "$socket" >"$work/serve.out" 2>"$work/serve.log" &
  server=$!
  waited=0
  until grep -q '^Listening on' "$work/serve.out" && [ -S "$socket" ]; do
    if ! kill -0 "$server" 2>/dev/null || ((waited > 3000)); then break; fi
    sleep 0.01
    waited=$((waited + 1))
  done
  uri="nbd+unix:///vm?socket=$socket"
  if ((cycle % 2 == 0)); then
    qemu-io -f raw "$uri" -c "write -P $((cycle % 256)) $(((cycle % 64) * 4096)) 4k" >/dev/null 2>&1 || true
  else
    nbdinfo "$uri" >/dev/null 2>&1 || true
  fi
  kill -"$signal" "$server" 2>/dev/null || true
  status=0
  wait "$server" || status=$?
  server=
  if ((status != 0)); then
    failures=$((failures + 1))
    echo "cycle $cycle (SIG$signal): exit status $status" >&2
    tail -n 5 "$work/serve.log" >&2
  fi
done

echo "$cycles cycles, $failures unclean exits"
((failures == 0))
