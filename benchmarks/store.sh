#!/usr/bin/env bash
# Live store benchmarks, all in one run on the same disk:
#  1. restore: a 1 GiB volume restored at an instant 10,000 journal records after its
#     last full write, against `cp` of a 1 GiB image (each followed by sync).   target ≥ 0.5
#  2. space: store size after ingesting real file data (a tar of /usr) against
#     `zstd -3` of the same bytes.                        target ≤ 1.1× (ratio = zstd/store)
#  3. dedup: the same 256 MiB written ten times costs about one copy.
#  4. ingest throughput (target ≥ 200 MB/s) and peak RSS (target ≤ 300 MiB).
# Usage: benchmarks/store.sh [SIZE]   (SIZE default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
bytes=$(numfmt --from=iec "$size")
work=$PWD/.bench-work/store-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

source benchmarks/lib.sh

echo "== real data: the first $size of a tar of /usr"
tar -cf - /usr/share /usr/lib /usr/bin 2>/dev/null | head -c "$bytes" >"$work/source.img" || true
actual=$(stat -c %s "$work/source.img")

export REEL_STORE=$work/store
"$reel" init >/dev/null
"$reel" volume create data --size "$actual" --block-size 512 >/dev/null
"$bench" workload "$REEL_STORE" data "$work/source.img" 1 10000 "$work/small-writes.bin"

drop_caches
start=$(now)
/usr/bin/time -f "%M" -o "$work/ingest.rss" "$reel" ingest data >/dev/null
end=$(now)
ingest_mbps=$(mbps "$((actual + 10000 * 4096))" "$start" "$end")
ingest_rss_mib=$(awk '{ printf "%.0f", $1 / 1024 }' "$work/ingest.rss")
echo "ingest: $ingest_mbps MB/s, peak RSS $ingest_rss_mib MiB"

store_bytes=$(du -sb "$REEL_STORE/packs" | cut -f1)
cat "$work/source.img" "$work/small-writes.bin" | zstd -3 -q -c >"$work/source.zst"
zstd_bytes=$(stat -c %s "$work/source.zst")
rm -f "$work/source.zst"
echo "space: store packs $store_bytes bytes, zstd -3 of every byte written $zstd_bytes bytes"

echo "== restore at an instant after 10,000 small writes vs cp"
drop_caches
start=$(now)
"$reel" restore data --at "benchmark end" --output "$work/restored.img" >/dev/null
sync
end=$(now)
restore_mbps=$(mbps "$actual" "$start" "$end")
drop_caches
start=$(now)
cp "$work/source.img" "$work/copy.img"
sync
end=$(now)
cp_mbps=$(mbps "$actual" "$start" "$end")
rm -f "$work/copy.img" "$work/restored.img"
echo "restore: $restore_mbps MB/s, cp: $cp_mbps MB/s"

echo "== dedup: the same 256 MiB written ten times"
head -c 268435456 /dev/urandom >"$work/256.img"
"$reel" volume create dedup --size 256M >/dev/null
before=$(du -sb "$REEL_STORE/packs" | cut -f1)
"$bench" workload "$REEL_STORE" dedup "$work/256.img" 10 0 >/dev/null
"$reel" ingest dedup >/dev/null
after=$(du -sb "$REEL_STORE/packs" | cut -f1)
echo "dedup: 10 × 256 MiB of fresh random data written, store grew by $((after - before)) bytes ($(awk -v g="$((after - before))" 'BEGIN { printf "%.2f", g / 268435456 }') × 256 MiB)"

awk -v r="$restore_mbps" -v c="$cp_mbps" \
  'BEGIN { printf "RESULT store-restore reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=0.5\n", r, c, r / c }'
awk -v s="$store_bytes" -v z="$zstd_bytes" \
  'BEGIN { printf "RESULT store-space reel=%dB baseline=%dB ratio=%.2f target=0.91\n", s, z, z / s }'
awk -v r="$ingest_mbps" -v m="$ingest_rss_mib" \
  'BEGIN { printf "RESULT store-ingest reel=%.1fMB/s baseline=200MB/s ratio=%.2f target=1.0 rss=%dMiB\n", r, r / 200, m }'
