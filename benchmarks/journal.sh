#!/usr/bin/env bash
# Journal append throughput: 1 GiB as 64 KiB records with a sync every 1 MiB, against
# dd writing the same bytes as 1 MiB blocks with oflag=dsync to the same disk, in
# alternating rounds (BENCH_ROUNDS, default 4).
# Usage: benchmarks/journal.sh [TOTAL] [WORKDIR]   (TOTAL default 1G; WORKDIR default
# a fresh folder under ./.bench-work on the same disk as the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-1G}
work=${2:-$PWD/.bench-work/journal-$$}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

source benchmarks/lib.sh

count_mib=$(( $(numfmt --from=iec "$total") / 1048576 ))
# Each side takes about 1.5 s and swings with the virtual disk by up to 20% from one run
# to the next, so this comparison takes 4 rounds unless BENCH_ROUNDS says otherwise.
rounds=${BENCH_ROUNDS:-4}

# Each side starts on a settled disk: the other side's file deleted and everything synced
# first (without this Reel always ran right after dd's 1 GiB file was deleted, and its
# figure swung 594-921 MB/s in all.sh while dd's stayed at 727-851). Odd rounds run dd
# first, even rounds Reel; the fastest round of each side counts.
best_dd=0
best_reel=0
time_dd() {
  sync
  start=$(now)
  dd if=/dev/zero of="$work/dd.out" bs=1M count="$count_mib" oflag=dsync status=none
  end=$(now)
  dd_mbps=$(awk -v n="$count_mib" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n * 1048576 / (b - a) / 1e6 }')
  rm -f "$work/dd.out"
  sync
  best_dd=$(awk -v x="$dd_mbps" -v y="$best_dd" 'BEGIN { print (x > y ? x : y) }')
}
time_reel() {
  sync
  line=$("$bench" journal "$work/journal" "$total" 64K 1M)
  reel_mbps=${line##*mbps=}
  rm -rf "$work/journal"
  sync
  best_reel=$(awk -v x="$reel_mbps" -v y="$best_reel" 'BEGIN { print (x > y ? x : y) }')
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then time_dd; time_reel; else time_reel; time_dd; fi
  printf 'round %d: dd oflag=dsync %.1f MB/s, reel journal %.1f MB/s\n' "$round" "$dd_mbps" "$reel_mbps"
done

awk -v r="$best_reel" -v b="$best_dd" \
  'BEGIN { printf "RESULT journal reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=0.9\n", r, b, r / b }'
