#!/usr/bin/env bash
# Clones and rollback (docs/clones.md), in one run on the same disk:
#  1. clone: `reel clone` of a SIZE volume with a long history (its data, then 10,000 small
#     writes), against `cp --reflink=never` of the image restored at the same point (the
#     restore not counted; page cache dropped before each). Wall time printed.
#                                                                    target ratio ≥ 20
#  2. clone reads: nbdcopy of the whole fresh clone through `reel serve` (a lazy live
#     image: every byte from the store), against the origin served live (its live.img);
#     page cache dropped before each.                                target ratio ≥ 0.7
#  3. rollback: `reel rollback --to` a bookmark after 64 MiB of changes, against `reel
#     restore` of the whole volume at that bookmark.                 target ratio ≥ 10
# Usage: benchmarks/clone.sh [SIZE]   (the volume, default 4G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-4G}
work=$PWD/.bench-work/clone-$$
mkdir -p "$work"
server_pid=
cleanup() {
  set +e
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

source benchmarks/lib.sh
bytes=$(numfmt --from=iec "$size")
export REEL_STORE=$work/store
socket=$work/nbd.sock

# serve VOLUME...: reel serve in the background, waiting until it listens.
serve() {
  "$reel" serve "$@" --socket "$socket" --ingest-interval 3600 >"$work/serve.log" 2>&1 &
  server_pid=$!
  until grep -q "Listening on" "$work/serve.log" 2>/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.2
  done
}
stop_server() { kill "$server_pid"; wait "$server_pid"; server_pid=; }
uri() { echo "nbd+unix:///$1?socket=$socket"; }

echo "== a $size volume with a long history: real files (a tar of /usr), then 10,000 small writes"
tar -cf - /usr/share /usr/lib /usr/bin 2>/dev/null | head -c "$bytes" >"$work/source.img" || true
"$reel" init >/dev/null
"$reel" volume create data --size "$size" >/dev/null
"$bench" workload "$REEL_STORE" data "$work/source.img" 1 10000
rm -f "$work/source.img"
# Served once before the ingest, so the origin's live image is whole (built from the
# journal), as for a volume that has been served all along.
serve data
stop_server
"$reel" ingest data >/dev/null

echo "== 1. clone vs cp --reflink=never of the restored image"
"$reel" restore data --at latest --output "$work/restored.img" >/dev/null
drop_caches
start=$(now)
cp --reflink=never "$work/restored.img" "$work/copy.img"
sync -f "$work/copy.img"
end=$(now)
baseline=$(seconds "$start" "$end")
rm -f "$work/restored.img" "$work/copy.img"
drop_caches
start=$(now)
"$reel" clone data --at latest --as fresh >/dev/null
end=$(now)
clone=$(seconds "$start" "$end")
echo "reel clone of $size: $clone s (wall); cp --reflink=never: $baseline s"
echo "RESULT clone reel=$clone baseline=$baseline ratio=$(awk -v a="$baseline" -v b="$clone" 'BEGIN { printf "%.1f", a / b }') target=20"

echo "== 2. reads of the fresh clone (from the store) vs the origin served live"
serve data fresh
grep "fresh" "$work/serve.log" | head -2
best_clone= best_origin=
for _ in $(seq "$rounds"); do
  drop_caches
  start=$(now); nbdcopy "$(uri data)" null:; end=$(now)
  best_origin=$(fastest "$best_origin" "$(seconds "$start" "$end")")
  drop_caches
  start=$(now); nbdcopy "$(uri fresh)" null:; end=$(now)
  best_clone=$(fastest "$best_clone" "$(seconds "$start" "$end")")
done
stop_server
clone_mbps=$(mbps "$bytes" 0 "$best_clone")
origin_mbps=$(mbps "$bytes" 0 "$best_origin")
echo "clone reads: $best_clone s ($clone_mbps MB/s); origin: $best_origin s ($origin_mbps MB/s)"
echo "RESULT clone-reads reel=$clone_mbps baseline=$origin_mbps ratio=$(awk -v a="$clone_mbps" -v b="$origin_mbps" 'BEGIN { printf "%.2f", a / b }') target=0.7"

echo "== 3. rollback after 64 MiB of changes vs restore of the whole volume"
if ! "$reel" rollback --help >/dev/null 2>&1; then
  echo "reel rollback is not in this build; skipped"
  exit 0
fi
"$reel" bookmark data before-changes >/dev/null
serve data
# 64 MiB in 1 MiB writes spread over the volume.
step=$((bytes / 64 / 1048576 * 1048576))
commands=()
for i in $(seq 0 63); do commands+=(-c "write -P $((i % 250 + 1)) $((i * step)) 1M"); done
qemu-io -f raw "$(uri data)" "${commands[@]}" -c flush >/dev/null
stop_server
"$reel" ingest data >/dev/null
drop_caches
start=$(now)
"$reel" restore data --at before-changes --output "$work/restored.img" >/dev/null
end=$(now)
baseline=$(seconds "$start" "$end")
rm -f "$work/restored.img"
drop_caches
start=$(now)
"$reel" rollback data --to before-changes >/dev/null
end=$(now)
rollback=$(seconds "$start" "$end")
echo "reel rollback: $rollback s; reel restore of the whole volume: $baseline s"
echo "RESULT rollback reel=$rollback baseline=$baseline ratio=$(awk -v a="$baseline" -v b="$rollback" 'BEGIN { printf "%.1f", a / b }') target=10"
