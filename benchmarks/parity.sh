#!/usr/bin/env bash
# Parity benchmark, one run on one disk (each side timed in BENCH_ROUNDS alternating
# rounds, the fastest counting): SIZE of journaled real data (a tar of /usr and 10,000
# small writes, as benchmarks/seal.sh) sealed with `--parity 5` and with `--parity 0`.
#   seal:      throughput with 5 % parity / without, target ≥ 0.95
#   space:     archive with parity / without, printed; target ≤ 1.06 (ratio = without / with ≥ 0.943)
#   repair:    `reel repair` of the parity archive with 1 % of its 4 KiB blocks overwritten
#              (random, seeded), archive MB/s, target ≥ 500 MB/s; the result must be the
#              sealed file byte for byte
#   rehydrate: `reel rehydrate` of the damaged archive vs the undamaged one, target ≥ 0.8
# Usage: benchmarks/parity.sh [SIZE]   (SIZE default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
work=$PWD/.bench-work/parity-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

source benchmarks/lib.sh

echo "== journal $size of real data (a tar of /usr) and 10,000 small writes"
journal_real_workload "$work" "$size"
"$reel" ingest data >/dev/null

# Each seal starts from the same catalog state (the catalog is what records a seal).
catalog=$REEL_STORE/catalog.sqlite
mkdir -p "$work/catalog.before-seal"
cp "$catalog" "$catalog"-wal "$work/catalog.before-seal/" 2>/dev/null || cp "$catalog" "$work/catalog.before-seal/"
with_seconds=""
without_seconds=""
for round in $(seq "$rounds"); do
  for parity in 5 0; do
    rm -f "$catalog-wal" "$catalog-shm"
    cp "$work/catalog.before-seal"/* "$REEL_STORE/"
    rm -rf "$work/sealed-$parity"
    drop_caches
    start=$(now)
    "$reel" seal data --until latest --out "$work/sealed-$parity" --parity "$parity" >/dev/null
    end=$(now)
    echo "round $round: seal --parity $parity $(seconds "$start" "$end") s"
    if [ "$parity" = 0 ]; then
      without_seconds=$(fastest "$without_seconds" "$(seconds "$start" "$end")")
    else
      with_seconds=$(fastest "$with_seconds" "$(seconds "$start" "$end")")
    fi
  done
done
plain=$(ls "$work"/sealed-0/*.reel.tar)
protected=$(ls "$work"/sealed-5/*.reel.tar)
plain_bytes=$(stat -c %s "$plain")
protected_bytes=$(stat -c %s "$protected")

echo "== damage 1 % of the parity archive's 4 KiB blocks"
mkdir -p "$work/damaged"
damaged=$work/damaged/$(basename "$protected")
python3 - "$protected" "$damaged" <<'PY'
import os, random, shutil, sys
source, target = sys.argv[1], sys.argv[2]
shutil.copyfile(source, target)
blocks = os.path.getsize(target) // 4096
rng = random.Random(2026)
with open(target, "r+b") as f:
    for block in rng.sample(range(blocks), max(1, blocks // 100)):
        f.seek(block * 4096)
        f.write(bytes(rng.getrandbits(8) for _ in range(4096)))
PY
"$reel" verify "$damaged" | tail -3 || true

repair_seconds=""
for round in $(seq "$rounds"); do
  rm -f "$work/repaired.reel.tar"
  drop_caches
  start=$(now)
  "$reel" repair "$damaged" --out "$work/repaired.reel.tar" | tail -1
  end=$(now)
  echo "round $round: repair $(seconds "$start" "$end") s"
  repair_seconds=$(fastest "$repair_seconds" "$(seconds "$start" "$end")")
done
cmp "$work/repaired.reel.tar" "$protected"
echo "repaired archive is the sealed one, byte for byte"

echo "== rehydrate the damaged archive and the undamaged one"
mkdir -p "$work/undamaged"
cp "$protected" "$work/undamaged/"
unset REEL_STORE
damaged_seconds=""
undamaged_seconds=""
for round in $(seq "$rounds"); do
  for which in damaged undamaged; do
    rm -rf "$work/dr-$which"
    drop_caches
    start=$(now)
    # Exit 3 is rehydrate's answer to damage it repaired (the media need a new copy);
    # the report must still say every archive came in.
    status=0
    "$reel" rehydrate --from "dir:$work/$which" --store "$work/dr-$which" >"$work/rehydrate-$which.out" || status=$?
    end=$(now)
    expected=0
    [ "$which" = damaged ] && expected=3
    if [ "$status" != "$expected" ]; then
      cat "$work/rehydrate-$which.out"
      echo "rehydrate of the $which archive exited $status, expected $expected" >&2
      exit 1
    fi
    echo "round $round: rehydrate $which $(seconds "$start" "$end") s"
    if [ "$which" = damaged ]; then
      damaged_seconds=$(fastest "$damaged_seconds" "$(seconds "$start" "$end")")
    else
      undamaged_seconds=$(fastest "$undamaged_seconds" "$(seconds "$start" "$end")")
    fi
  done
done
tail -3 "$work/rehydrate-damaged.out"

echo "seal: $with_seconds s with 5 % parity, $without_seconds s without"
echo "space: $protected_bytes bytes with parity, $plain_bytes without ($(awk -v a="$protected_bytes" -v b="$plain_bytes" 'BEGIN { printf "%.3f", a / b }')×)"
awk -v r="$with_seconds" -v b="$without_seconds" \
  'BEGIN { printf "RESULT parity-seal reel=%.2fs baseline=%.2fs ratio=%.2f target=0.95\n", r, b, b / r }'
awk -v r="$protected_bytes" -v b="$plain_bytes" \
  'BEGIN { printf "RESULT parity-space reel=%dB baseline=%dB ratio=%.3f target=0.943\n", r, b, b / r }'
awk -v bytes="$protected_bytes" -v s="$repair_seconds" \
  'BEGIN { r = bytes / s / 1e6; printf "RESULT parity-repair reel=%.1fMB/s baseline=500MB/s ratio=%.2f target=1.0\n", r, r / 500 }'
awk -v r="$damaged_seconds" -v b="$undamaged_seconds" \
  'BEGIN { printf "RESULT parity-rehydrate-damaged reel=%.2fs baseline=%.2fs ratio=%.2f target=0.8\n", r, b, b / r }'
