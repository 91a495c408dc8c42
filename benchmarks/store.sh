#!/usr/bin/env bash
# Live store benchmarks, all in one run on the same disk (issue #22, targets 3 and 4):
#  1. ingest: `reel ingest` of a fresh store against `zstd -T2 -<store level>` of the same
#     journal segment files (output written and synced on the same disk), alternating
#     rounds, caches dropped before each; ratio = zstd time / ingest time.  target ≥ 0.9
#     Peak RSS of ingest is printed (target ≤ 300 MiB at a 4 GiB history).
#  2. space: store size after ingesting real file data (a tar of /usr) against
#     `zstd -3` of the same bytes.                        target ≤ 1.1× (ratio = zstd/store)
#  3. restore: the volume restored at an instant 10,000 journal records after its last
#     full write, against `cp` of an image of the same size (each followed by sync),
#     alternating rounds, caches dropped before each side.             target ≥ 0.8
#  4. dedup: the same 256 MiB written ten times costs about one copy (skip: NO_DEDUP=1).
# The fastest of BENCH_ROUNDS rounds (default 2) of each side counts.
# Usage: benchmarks/store.sh [SIZE]   (SIZE default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
bytes=$(numfmt --from=iec "$size")
work=$PWD/.bench-work/store-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

source benchmarks/lib.sh

# The level ingest compresses at (ChunkCodec.compressionLevel), read from the source so the
# baseline follows it.
level=$(sed -n 's/.*static let compressionLevel: Int32 = \([0-9]*\).*/\1/p' Sources/ReelStore/ChunkStore.swift)

echo "== real data: the first $size of a tar of /usr"
tar -cf - /usr/share /usr/lib /usr/bin 2>/dev/null | head -c "$bytes" >"$work/source.img" || true
actual=$(stat -c %s "$work/source.img")

export REEL_STORE=$work/store
"$reel" init >/dev/null
"$reel" volume create data --size "$actual" --block-size 512 >/dev/null
"$bench" workload "$REEL_STORE" data "$work/source.img" 1 10000 "$work/small-writes.bin"
journal=$REEL_STORE/volumes/data/journal
journaled=$(du -sb "$journal" | cut -f1)
echo "journal: $journaled bytes"
# Each ingest round starts from this copy of the store as it was before any ingest.
cp -a "$REEL_STORE" "$work/store-before-ingest"

echo "== ingest vs zstd -T2 -$level of the journal segments"
ingest_best=""
zstd_best=""
ingest_rss_kib=0
time_ingest() {
  drop_caches
  start=$(now)
  /usr/bin/time -f "%M" -o "$work/ingest.rss" "$reel" ingest data >/dev/null
  end=$(now)
  ingest_s=$(seconds "$start" "$end")
  rss=$(cat "$work/ingest.rss")
  ingest_rss_kib=$((rss > ingest_rss_kib ? rss : ingest_rss_kib))
  ingest_best=$(fastest "$ingest_best" "$ingest_s")
}
time_zstd() {
  drop_caches
  start=$(now)
  zstd -T2 "-$level" -q -c "$journal"/*.rjs >"$work/journal.zst"
  sync
  end=$(now)
  zstd_s=$(seconds "$start" "$end")
  rm -f "$work/journal.zst"
  zstd_best=$(fastest "$zstd_best" "$zstd_s")
}
for round in $(seq "$rounds"); do
  rm -rf "$REEL_STORE"
  cp -a "$work/store-before-ingest" "$REEL_STORE"
  # Odd rounds ingest first: whichever side runs second meets the other's writeback.
  if [ $((round % 2)) = 1 ]; then time_ingest; time_zstd; else time_zstd; time_ingest; fi
  echo "round $round: ingest $ingest_s s (peak RSS $((rss / 1024)) MiB), zstd $zstd_s s"
done
rm -rf "$work/store-before-ingest"
ingest_mbps=$(mbps "$journaled" 0 "$ingest_best")
zstd_mbps=$(mbps "$journaled" 0 "$zstd_best")
ingest_rss_mib=$((ingest_rss_kib / 1024))
echo "ingest: $ingest_mbps MB/s, zstd -T2 -$level: $zstd_mbps MB/s, peak RSS $ingest_rss_mib MiB"

store_bytes=$(du -sb "$REEL_STORE/packs" | cut -f1)
cat "$work/source.img" "$work/small-writes.bin" | zstd -3 -q -c >"$work/source.zst"
zstd_bytes=$(stat -c %s "$work/source.zst")
rm -f "$work/source.zst" "$work/small-writes.bin"
echo "space: store packs $store_bytes bytes, zstd -3 of every byte written $zstd_bytes bytes"

echo "== restore at an instant after 10,000 small writes vs cp"
restore_best=""
cp_best=""
for round in $(seq "$rounds"); do
  drop_caches
  start=$(now)
  "$reel" restore data --at "benchmark end" --output "$work/restored.img" >/dev/null
  sync
  end=$(now)
  restore_s=$(seconds "$start" "$end")
  rm -f "$work/restored.img"
  drop_caches
  start=$(now)
  cp "$work/source.img" "$work/copy.img"
  sync
  end=$(now)
  cp_s=$(seconds "$start" "$end")
  rm -f "$work/copy.img"
  echo "round $round: restore $restore_s s, cp $cp_s s"
  restore_best=$(fastest "$restore_best" "$restore_s")
  cp_best=$(fastest "$cp_best" "$cp_s")
done
restore_mbps=$(mbps "$actual" 0 "$restore_best")
cp_mbps=$(mbps "$actual" 0 "$cp_best")
echo "restore: $restore_mbps MB/s, cp: $cp_mbps MB/s"

if [ "${NO_DEDUP:-}" != 1 ]; then
  echo "== dedup: the same 256 MiB written ten times"
  head -c 268435456 /dev/urandom >"$work/256.img"
  "$reel" volume create dedup --size 256M >/dev/null
  before=$(du -sb "$REEL_STORE/packs" | cut -f1)
  "$bench" workload "$REEL_STORE" dedup "$work/256.img" 10 0 >/dev/null
  "$reel" ingest dedup >/dev/null
  after=$(du -sb "$REEL_STORE/packs" | cut -f1)
  echo "dedup: 10 × 256 MiB of fresh random data written, store grew by $((after - before)) bytes ($(awk -v g="$((after - before))" 'BEGIN { printf "%.2f", g / 268435456 }') × 256 MiB)"
fi

awk -v r="$restore_mbps" -v c="$cp_mbps" \
  'BEGIN { printf "RESULT store-restore reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=0.8\n", r, c, r / c }'
awk -v s="$store_bytes" -v z="$zstd_bytes" \
  'BEGIN { printf "RESULT store-space reel=%dB baseline=%dB ratio=%.2f target=0.91\n", s, z, z / s }'
awk -v r="$ingest_mbps" -v z="$zstd_mbps" -v m="$ingest_rss_mib" \
  'BEGIN { printf "RESULT store-ingest reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=0.9 rss=%dMiB\n", r, z, r / z, m }'
