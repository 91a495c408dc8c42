#!/usr/bin/env bash
# Rehydrate benchmark, one run on one disk (each side timed in two alternating rounds, the
# fastest counting; BENCH_ROUNDS changes the count): the seal benchmark's history (SIZE of a tar of
# /usr plus 10,000 small writes) sealed and exported to a vtape cartridge, then
# `reel rehydrate` from the cartridge into an empty store — every frame decrypted and
# authenticated, every chunk record checked (CRC-32C and name), packs and catalog
# fsynced — against
# `openssl enc -d | zstd -d | tar -x` of the seal benchmark's baseline archive of the same
# journal (then sync).
#   throughput: bytes journaled / wall time, target ≥ 1.0× the baseline (issue #22; was 0.8)
# Then a restore from the rehydrated store at the last instant: seconds per GiB.
# Usage: benchmarks/rehydrate.sh [SIZE]   (SIZE default 1G; REEL_SEAL_FLAGS="--format 1" for archive format 1)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
work=$PWD/.bench-work/rehydrate-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
source benchmarks/lib.sh

echo "== setup (not timed): journal, seal, export to vtape, baseline archive"
journal_real_workload "$work" "$size"
"$reel" seal data --until latest --out "$work/sealed" ${REEL_SEAL_FLAGS:-} >/dev/null
archive=$(ls "$work"/sealed/*.reel.tar)
archive_bytes=$(stat -c %s "$archive")
mkdir -p "$work/vtl"
"$reel" media label "vtape:$work/vtl" --name DR0001 --media-set dr --capacity "$((archive_bytes * 2 + (64 << 20)))" >/dev/null
"$reel" export "$archive" --to "vtape:$work/vtl" --media-set dr >/dev/null
baseline_seal "$journal" "$work/baseline.enc"
unset REEL_STORE

reel_seconds=""
baseline_seconds=""
mkdir -p "$work/extracted"
for round in $(seq "$rounds"); do
  echo "== round $round: reel rehydrate from vtape into an empty store"
  rm -rf "$work/dr-store"
  drop_caches
  start=$(now)
  "$reel" rehydrate --from "vtape:$work/vtl" --store "$work/dr-store"
  end=$(now)
  echo "round $round: rehydrate $(seconds "$start" "$end") s"
  reel_seconds=$(fastest "$reel_seconds" "$(seconds "$start" "$end")")

  echo "== round $round: baseline: openssl enc -d | zstd -d | tar -x, then sync"
  rm -rf "$work/extracted"/*
  drop_caches
  start=$(now)
  openssl enc -d -aes-256-ctr -pbkdf2 -pass pass:benchmark -in "$work/baseline.enc" | zstd -d -q -c | tar -x -C "$work/extracted"
  sync
  end=$(now)
  echo "round $round: baseline $(seconds "$start" "$end") s"
  baseline_seconds=$(fastest "$baseline_seconds" "$(seconds "$start" "$end")")
done
rm -rf "$work/extracted"
reel_mbps=$(mbps "$journaled" 0 "$reel_seconds")
baseline_mbps=$(mbps "$journaled" 0 "$baseline_seconds")
echo "== restore from the rehydrated store at the last bookmark"
drop_caches
start=$(now)
"$reel" restore data --store "$work/dr-store" --at "benchmark end" --output "$work/restored.img" >/dev/null
sync
end=$(now)
restored=$(stat -c %s "$work/restored.img")
restore_seconds=$(seconds "$start" "$end")
per_gib=$(awk -v s="$restore_seconds" -v b="$restored" 'BEGIN { printf "%.2f", s / (b / 1073741824) }')

echo "rehydrate: $reel_seconds s, $reel_mbps MB/s of journaled history ($archive_bytes archive bytes read from vtape)"
echo "baseline: $baseline_mbps MB/s"
echo "restore at an instant from the rehydrated store: $restore_seconds s for $restored bytes = $per_gib s/GiB"
awk -v r="$reel_mbps" -v b="$baseline_mbps" \
  'BEGIN { printf "RESULT rehydrate reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=1.0\n", r, b, r / b }'
