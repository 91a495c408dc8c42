#!/usr/bin/env bash
# Export benchmark, one run on one disk: `reel export` of a sealed archive of SIZE random
# (incompressible, so the archive is about SIZE too) to a vtape cartridge — written in
# 1 MiB blocks, fdatasync'd at the filemark, read back from the cartridge and verified
# (every member against SHA256SUMS and the manifest, the whole stream against the
# source's SHA-256) — against `dd bs=1M conv=fsync` of the same file to the same disk
# followed by `sha256sum` of the copy. Caches are dropped before each side.
#   throughput: archive bytes / wall time, target ≥ 0.9× the baseline
# Usage: benchmarks/export.sh [SIZE]   (SIZE default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
bytes=$(numfmt --from=iec "$size")
work=$PWD/.bench-work/export-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

source benchmarks/lib.sh

echo "== seal $size of random writes into one archive (setup, not timed)"
head -c "$bytes" /dev/urandom >"$work/source.img"
export REEL_STORE=$work/store REEL_PASSPHRASE=benchmark REEL_KEY=$work/master.key
"$reel" init >/dev/null
"$reel" key create --out "$REEL_KEY" >/dev/null
"$reel" volume create data --size "$bytes" --block-size 512 >/dev/null
"$bench" workload "$REEL_STORE" data "$work/source.img" 1 0 >/dev/null
rm -f "$work/source.img"
"$reel" ingest data >/dev/null
"$reel" seal data --until latest --out "$work/sealed" >/dev/null
archive=$(ls "$work"/sealed/*.reel.tar)
archive_bytes=$(stat -c %s "$archive")
echo "archive: $archive_bytes bytes"

mkdir -p "$work/vtl"
"$reel" media label "vtape:$work/vtl" --name BENCH1 --capacity "$((archive_bytes * 2 + (64 << 20)))" >/dev/null

echo "== reel export to vtape (with read-after-write verification)"
drop_caches
start=$(now)
"$reel" export "$archive" --to "vtape:$work/vtl/BENCH1.vtape" --media-set bench
end=$(now)
reel_mbps=$(mbps "$archive_bytes" "$start" "$end")
echo "reel export: $reel_mbps MB/s"
rm -rf "$work/vtl"

echo "== dd bs=1M conv=fsync, then sha256sum of the copy"
drop_caches
start=$(now)
dd if="$archive" of="$work/copy.tar" bs=1M conv=fsync status=none
sha256sum "$work/copy.tar" >/dev/null
end=$(now)
dd_mbps=$(mbps "$archive_bytes" "$start" "$end")
echo "dd + sha256sum: $dd_mbps MB/s"
rm -f "$work/copy.tar"

awk -v r="$reel_mbps" -v b="$dd_mbps" \
  'BEGIN { printf "RESULT export reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=0.9\n", r, b, r / b }'
