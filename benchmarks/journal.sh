#!/usr/bin/env bash
# Journal append throughput: 1 GiB as 64 KiB records with a sync every 1 MiB, against
# dd writing the same bytes as 1 MiB blocks with oflag=dsync to the same disk.
# Usage: benchmarks/journal.sh [TOTAL] [WORKDIR]   (TOTAL default 1G; WORKDIR default
# a fresh folder under ./.bench-work on the same disk as the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-1G}
work=${2:-$PWD/.bench-work/journal-$$}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

swift build -c release --static-swift-stdlib --product reel-bench >/dev/null
bench=$(swift build -c release --static-swift-stdlib --show-bin-path)/reel-bench

count_mib=$(( $(numfmt --from=iec "$total") / 1048576 ))
sync

# Baseline first, then Reel, then both again; each figure is the better of two runs.
best_dd=0
best_reel=0
for round in 1 2; do
  rm -f "$work/dd.out"
  start=$(date +%s.%N)
  dd if=/dev/zero of="$work/dd.out" bs=1M count="$count_mib" oflag=dsync status=none
  end=$(date +%s.%N)
  dd_mbps=$(awk -v n="$count_mib" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n * 1048576 / (b - a) / 1e6 }')
  rm -f "$work/dd.out"

  rm -rf "$work/journal"
  line=$("$bench" journal "$work/journal" "$total" 64K 1M)
  reel_mbps=${line##*mbps=}
  rm -rf "$work/journal"
  printf 'round %d: dd oflag=dsync %.1f MB/s, reel journal %.1f MB/s\n' "$round" "$dd_mbps" "$reel_mbps"
  best_dd=$(awk -v x="$dd_mbps" -v y="$best_dd" 'BEGIN { print (x > y ? x : y) }')
  best_reel=$(awk -v x="$reel_mbps" -v y="$best_reel" 'BEGIN { print (x > y ? x : y) }')
done

awk -v r="$best_reel" -v b="$best_dd" \
  'BEGIN { printf "RESULT journal reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=0.9\n", r, b, r / b }'
