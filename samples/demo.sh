#!/usr/bin/env bash
# Reel, the whole story, on the default store ($REEL_STORE, else ~/.local/share/reel):
#
#   1. capture: two volumes served over NBD (`reel serve`); the kernel is the client
#      (nbdfuse + a loop mount of ext4). One holds real files from /usr/share that are then
#      edited, renamed and deleted; the other a SQLite database under a transaction load.
#      Crash-consistent bookmarks (fsfreeze, `reel bookmark`) over two sessions ("days").
#   2. the nightly pipeline (pipelines/nightly-seal-export.yaml) to a virtual tape set:
#      cut, seal, verify, export, verify on tape, record the catalog, prune the journal.
#   3. the DR drill (pipelines/dr-drill.yaml): rehydrate from the tapes and the key into a
#      scratch store, restore, compare with the live store.
#      Then the database volume is rehydrated from the tapes alone into another store,
#      served from there over NBD and compared with the sealed state it came from.
#   4. restores at every bookmark, compared with what the device held then; the database
#      and a file checked inside the restored file systems; then the same file read with
#      `reel files` at a bookmark, a diff between two bookmarks and the file's history,
#      without restoring anything; a short table.
#
# Run as root on Debian 12 with Swift 6.3 on PATH. The key and the tape library live in
# $REEL_DEMO_DIR (default ~/.local/share/reel-demo); the passphrase is $REEL_PASSPHRASE
# (default: a demo one). Run it again: new volumes, the same store, key and tapes.
set -euo pipefail
cd "$(dirname "$0")/.."
repository=$PWD
if [ "$(id -u)" != 0 ]; then
  echo "run as root: the demo mounts ext4 through a loop device" >&2
  exit 1
fi
./scripts/setup-debian.sh >/dev/null
if ! command -v sqlite3 >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null
fi
modprobe loop 2>/dev/null || true
echo "== building reel (release)"
swift build -c release --static-swift-stdlib --product reel 2>&1 | tail -1
reel="$(swift build -c release --static-swift-stdlib --show-bin-path)/reel"
started=$SECONDS

export REEL_STORE="${REEL_STORE:-$HOME/.local/share/reel}"
demo="${REEL_DEMO_DIR:-$HOME/.local/share/reel-demo}"
export REEL_KEY="${REEL_KEY:-$demo/master.reelkey}"
export REEL_PASSPHRASE="${REEL_PASSPHRASE:-reel demo passphrase}"
export REEL_VTL="$demo/vtl"
mkdir -p "$demo" "$REEL_VTL"
"$reel" init
[ -f "$REEL_KEY" ] || "$reel" key create --out "$REEL_KEY" --label "Reel demo key"
if ! compgen -G "$REEL_VTL/*.vtape" >/dev/null; then
  for n in 1 2 3; do
    "$reel" media label "vtape:$REEL_VTL/demo-$n.vtape" --name "DEMO0$n" --capacity 1G | sed 's/^/  /'
  done
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
files="files-$stamp"
db="db-$stamp"
"$reel" volume create "$files" --size 160M
"$reel" volume create "$db" --size 64M

work=$(mktemp -d /tmp/reel-demo.XXXXXX)
socket="$work/nbd.sock"
server=""
loader=""
fuses=()
cleanup() {
  set +e
  [ -n "$loader" ] && kill "$loader" 2>/dev/null && wait "$loader" 2>/dev/null
  for mountpoint in "$work"/mnt-*; do mountpoint -q "$mountpoint" && { fsfreeze -u "$mountpoint" 2>/dev/null; umount "$mountpoint"; }; done
  for folder in "$work"/fuse-*; do mountpoint -q "$folder" && fusermount3 -u "$folder"; done
  for pid in "${fuses[@]}"; do wait "$pid" 2>/dev/null; done
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM "$server"; wait "$server"; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Serves both volumes, exposes each through nbdfuse and mounts it (mkfs on the first day).
start_day() {
  "$reel" serve "$files" "$db" --socket "$socket" 2>>"$work/serve.log" >/dev/null &
  server=$!
  for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
  [ -S "$socket" ] || { cat "$work/serve.log"; echo "reel serve did not start" >&2; exit 1; }
  fuses=()
  for volume in "$files" "$db"; do
    mkdir -p "$work/fuse-$volume" "$work/mnt-$volume"
    nbdfuse "$work/fuse-$volume" "nbd+unix:///$volume?socket=$socket" &
    fuses+=($!)
    for _ in $(seq 100); do [ -e "$work/fuse-$volume/nbd" ] && break; sleep 0.1; done
    [ "${1:-}" = first ] && mkfs.ext4 -q -F -L "${volume%%-*}" "$work/fuse-$volume/nbd"
    mount -o loop "$work/fuse-$volume/nbd" "$work/mnt-$volume"
  done
}

end_day() {
  for volume in "$files" "$db"; do
    umount "$work/mnt-$volume"
    fusermount3 -u "$work/fuse-$volume"
  done
  for pid in "${fuses[@]}"; do wait "$pid"; done
  kill -TERM "$server"
  wait "$server"
  server=""
}

# A crash-consistent point: freeze the file system (everything written reaches the volume
# and the journal), bookmark, note what the device holds, thaw.
point() {
  local volume=$1 label=$2
  fsfreeze -f "$work/mnt-$volume"
  "$reel" bookmark "$volume" "$label" | sed 's/^/  /'
  echo "$volume $label $(sha256sum <"$work/fuse-$volume/nbd" | cut -c1-64)" >>"$work/expected"
  fsfreeze -u "$work/mnt-$volume"
}

echo "== day 1: capture through reel serve, nbdfuse and ext4 on a loop device"
start_day first
samples/workload.sh files-load "$work/mnt-$files" 24 | sed 's/^/  /'
samples/workload.sh db-create "$work/mnt-$db" 20000 | sed 's/^/  /'
point "$files" loaded
point "$db" loaded
samples/workload.sh db-load "$work/mnt-$db" 4 | sed 's/^/  /'
point "$db" day1-close
end_day

echo "== day 2: edits and deletes; the database under load while it is bookmarked"
start_day
samples/workload.sh db-load "$work/mnt-$db" 6 >"$work/load.log" &
loader=$!
samples/workload.sh files-edit "$work/mnt-$files" | sed 's/^/  /'
point "$files" edited
sleep 2
point "$db" under-load
wait "$loader"
loader=""
sed 's/^/  /' "$work/load.log"
cp /usr/share/common-licenses/GPL-3 "$work/mnt-$files/share/GPL-3-again"
point "$files" end-of-day
point "$db" end-of-day
end_day

declare -A written
for volume in "$files" "$db"; do
  written[$volume]=$("$reel" timeline "$volume" --json | sed -n 's/.*"bytes_written":\([0-9]*\).*/\1/p')
done
journal_before=$(du -sb "$REEL_STORE/volumes/$files/journal" "$REEL_STORE/volumes/$db/journal" | awk '{s+=$1} END {print s}')

echo "== nightly pipeline: $repository/pipelines/nightly-seal-export.yaml"
"$reel" pipeline run pipelines/nightly-seal-export.yaml --metrics-file "$demo/metrics/reel-nightly.prom"
journal_after=$(du -sb "$REEL_STORE/volumes/$files/journal" "$REEL_STORE/volumes/$db/journal" | awk '{s+=$1} END {print s}')

echo "== DR drill: $repository/pipelines/dr-drill.yaml"
"$reel" pipeline run pipelines/dr-drill.yaml --metrics-file "$demo/metrics/reel-dr-drill.prom"

status=0
echo "== disaster recovery ends with serving: $db rehydrated from the tapes, served, compared"
recovered="$work/recovered-store"
"$reel" rehydrate --from "vtape:$REEL_VTL" --volume "$db" --store "$recovered" | tail -1 | sed 's/^/  /'
sealed_seq=$("$reel" timeline "$db" --store "$recovered" --json | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')
"$reel" serve "$db" --store "$recovered" --socket "$work/recovered.sock" >"$work/recovered-serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "Listening on" "$work/recovered-serve.log" && break; sleep 0.1; done
nbdcopy "nbd+unix:///$db?socket=$work/recovered.sock" "$work/served.img"
kill -TERM "$server"
wait "$server"
server=""
"$reel" restore "$db" --at "seq:$sealed_seq" --output "$work/sealed.img" --force >/dev/null
if cmp -s "$work/served.img" "$work/sealed.img"; then
  served_dr="same"
  echo "  served from the rehydrated store: identical to seq $sealed_seq of the live store ($(sha256sum <"$work/served.img" | cut -c1-16)…)"
else
  served_dr="DIFFERENT"
  status=1
  echo "  served from the rehydrated store: DIFFERENT from seq $sealed_seq of the live store"
fi
rm -f "$work/served.img" "$work/sealed.img"

echo "== restores at every bookmark, compared with what the device held then"
declare -A good total
while read -r volume label want; do
  "$reel" restore "$volume" --at "$label" --output "$work/restored.img" --force >/dev/null
  got=$(sha256sum <"$work/restored.img" | cut -c1-64)
  total[$volume]=$((${total[$volume]:-0} + 1))
  if [ "$got" = "$want" ]; then
    echo "  $volume at $label: identical (sha256 ${got:0:16}…)"
    good[$volume]=$((${good[$volume]:-0} + 1))
  else
    echo "  $volume at $label: DIFFERENT (device ${want:0:16}…, restored ${got:0:16}…)"
    status=1
  fi
  if [ "$label" = end-of-day ]; then
    mkdir -p "$work/look"
    mount -o ro,loop,noload "$work/restored.img" "$work/look"
    if [ "$volume" = "$db" ]; then
      cp "$work/look/inventory.db" "$work/inventory.db"
      rm -f "$work/inventory.db-journal"
      if [ -e "$work/look/inventory.db-journal" ]; then cp "$work/look/inventory.db-journal" "$work/inventory.db-journal"; fi
      echo "    inside: inventory.db $(samples/workload.sh db-check "$work/inventory.db" | paste -sd' ')"
    elif cmp -s "$work/look/share/GPL-3-again" /usr/share/common-licenses/GPL-3 && [ ! -e "$work/look/share/zoneinfo/Europe" ]; then
      echo "    inside: share/GPL-3-again matches /usr/share/common-licenses/GPL-3; zoneinfo/Europe was renamed"
    else
      echo "    inside: the files are NOT as written"
      status=1
    fi
    umount "$work/look"
  fi
done <"$work/expected"

echo "== files at any instant, without restoring (reel files, docs/files.md)"
if "$reel" files cat "$files" --at end-of-day /share/GPL-3-again | cmp -s - /usr/share/common-licenses/GPL-3; then
  echo "  reel files cat $files --at end-of-day /share/GPL-3-again: the same as /usr/share/common-licenses/GPL-3"
else
  echo "  reel files cat $files --at end-of-day /share/GPL-3-again: NOT as written"
  status=1
fi
echo "  reel files diff $files --from loaded --to end-of-day /share (first lines):"
"$reel" files diff "$files" --from loaded --to end-of-day /share | head -4 | sed 's/^/    /'
echo "  reel files history $files /share/GPL-3-again:"
"$reel" files history "$files" /share/GPL-3-again | sed 's/^/    /'

catalog="$REEL_STORE/catalog.sqlite"
q() { sqlite3 -readonly "$catalog" "$1"; }
human() { numfmt --to=iec-i --suffix=B "${1:-0}"; }
echo
printf '%-24s %7s %9s %9s %9s %9s %8s %9s\n' volume points written sealed "on tape" "tape ok" restores drill
for volume in "$files" "$db"; do
  id=$(q "SELECT id FROM volume WHERE name = '$volume'")
  points=$(q "SELECT COUNT(*) FROM bookmark WHERE volume_id = '$id'")
  sealed=$(q "SELECT COALESCE(SUM(size), 0) FROM sealed_archive WHERE volume_id = '$id'")
  tape=$(q "SELECT COALESCE(SUM(size), 0) FROM archive_copy WHERE volume_name = '$volume'")
  verified=$(q "SELECT COALESCE(SUM(ok), 0) || '/' || COUNT(*) FROM media_check WHERE archive_id IN (SELECT id FROM sealed_archive WHERE volume_id = '$id')")
  drill=$(q "SELECT CASE WHEN status = 'done' THEN 'same' ELSE status END FROM pipeline_stage WHERE kind = 'compare' ORDER BY run_id DESC LIMIT 1")
  printf '%-24s %7s %9s %9s %9s %9s %8s %9s\n' "$volume" "$points" "$(human "${written[$volume]}")" "$(human "$sealed")" \
    "$(human "$tape")" "$verified" "${good[$volume]:-0}/${total[$volume]:-0}" "$drill"
done
echo
echo "live store packs (all volumes, deduplicated and compressed): $(human "$(du -sb "$REEL_STORE/packs" | cut -f1)")"
echo "journals of these volumes: $(human "$journal_before") before the nightly run, $(human "$journal_after") after its prune"
echo "rehydrated from tape and served: $db ${served_dr}"
echo "tapes: $REEL_VTL ($(ls "$REEL_VTL" | wc -l) cartridges); key: $REEL_KEY; metrics: $demo/metrics"
echo "story took $((SECONDS - started)) s (after the build). Store: $REEL_STORE"
exit $status
