#!/usr/bin/env bash
# Reel demo: protect a volume on the default store, write to it through NBD with real
# clients, bookmark, and rebuild it as of each bookmark — bit for bit.
# Grows with Reel: seal, tape and rehydrate join the story as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh >/dev/null
echo "== building reel (release)"
swift build -c release --product reel 2>&1 | tail -1
reel="$(swift build -c release --show-bin-path)/reel"

export REEL_STORE="${REEL_STORE:-$HOME/.local/share/reel}"
"$reel" init
name="demo-$(date -u +%Y%m%d-%H%M%S)"
"$reel" volume create "$name" --size 64M

work=$(mktemp -d)
socket="$work/nbd.sock"
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM "$server"; wait "$server" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== serving $name over NBD at $socket"
"$reel" serve "$name" --socket "$socket" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { cat "$work/serve.log"; echo "server did not start" >&2; exit 1; }
url="nbd+unix:///$name?socket=$socket"

echo "== writing through qemu-io, then bookmarking"
qemu-io -f raw -c 'write -P 0x11 0 4M' -c 'write -P 0x5a 16M 1M' -c flush "$url" | grep -v '^[0-9]'
"$reel" bookmark "$name" "first"
nbdcopy "$url" "$work/device-at-first.img"
qemu-io -f raw -c 'write -P 0x22 1M 2M' -c 'write -z 16M 512K' -c 'discard 32M 1M' -c flush "$url" | grep -v '^[0-9]'
"$reel" bookmark "$name" "second"
nbdcopy "$url" "$work/device-at-second.img"
qemu-io -f raw -c 'write -P 0x33 0 8M' -c flush "$url" | grep -v '^[0-9]'

echo "== stopping the server (SIGTERM: finish, sync, close the journal)"
kill -TERM "$server"
wait "$server"
server=""

echo "== history"
"$reel" timeline "$name"

echo "== restoring as of each bookmark and comparing with what the device held then"
status=0
for point in first second; do
  "$reel" restore "$name" --at "$point" --output "$work/restored-$point.img"
  want=$(sha256sum <"$work/device-at-$point.img" | cut -d' ' -f1)
  got=$(sha256sum <"$work/restored-$point.img" | cut -d' ' -f1)
  if [ "$want" = "$got" ]; then
    echo "  $point: identical (sha256 ${got:0:16}…)"
  else
    echo "  $point: DIFFERENT (device ${want:0:16}…, restored ${got:0:16}…)"
    status=1
  fi
done

echo "== browsing the past without restoring: serve bookmark 'first' read-only"
"$reel" serve "$name" --at first --read-only --socket "$socket" 2>>"$work/serve.log" &
server=$!
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
nbdcopy "$url" "$work/browsed-first.img"
kill -TERM "$server"
wait "$server"
server=""
if cmp -s "$work/browsed-first.img" "$work/device-at-first.img"; then
  echo "  served as of 'first': identical to the device then"
else
  echo "  served as of 'first': DIFFERENT"
  status=1
fi

echo "== checks"
"$reel" journal verify "$name"
"$reel" store check --read-data | tail -1

written=$("$reel" timeline "$name" --json | sed -n 's/.*"bytes_written":\([0-9]*\).*/\1/p')
stored=$(du -sb "$REEL_STORE/packs" | cut -f1)
journal=$(du -sb "$REEL_STORE/volumes/$name/journal" | cut -f1)
printf '\n%-28s %s\n' "volume" "$name"
printf '%-28s %s\n' "bookmarks" "first, second"
printf '%-28s %s bytes\n' "written by clients" "$written"
printf '%-28s %s bytes\n' "journal on disk" "$journal"
printf '%-28s %s bytes (all volumes)\n' "live store packs" "$stored"
printf '%-28s %s\n' "restore checks" "$([ $status = 0 ] && echo "all identical" || echo "FAILED")"
echo "Store: $REEL_STORE"
exit $status
