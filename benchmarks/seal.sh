#!/usr/bin/env bash
# Seal benchmark, one run on one disk (each side timed in two alternating rounds, the
# fastest counting; BENCH_ROUNDS changes the count): seal 1 GiB of journaled writes of real file data
# (the first SIZE of a tar of /usr, plus 10,000 small 4 KiB writes) into one archive —
# deduplicated, indexed, encrypted, fsynced, read back from disk and verified with the key —
# against `tar -cf - <journal segments> | zstd -3 -T2 | openssl enc -aes-256-ctr -pbkdf2`
# of the same segments (then sync).
#   throughput: bytes journaled / wall time, target ≥ 2.0× the baseline (issue #22; was 1.0)
#   size:       baseline output / archive size, target ≥ 0.95 (archive ≤ 1.05× baseline)
# The live store is brought up to date first (`reel serve` does that continuously); that
# ingest is timed and reported on its own.
# Usage: benchmarks/seal.sh [SIZE]   (SIZE default 1G; REEL_SEAL_FLAGS="--format 1" measures archive format 1)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
work=$PWD/.bench-work/seal-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

source benchmarks/lib.sh

echo "== journal $size of real data (a tar of /usr) and 10,000 small writes"
journal_real_workload "$work" "$size"

start=$(now)
"$reel" ingest data >/dev/null
end=$(now)
ingest_seconds=$(seconds "$start" "$end")
echo "ingest (done continuously by reel serve): $ingest_seconds s"

# The seal is repeated from the same catalog state (the catalog is what records a seal).
catalog=$REEL_STORE/catalog.sqlite
mkdir -p "$work/catalog.before-seal"
cp "$catalog" "$catalog"-wal "$work/catalog.before-seal/" 2>/dev/null || cp "$catalog" "$work/catalog.before-seal/"
seal_seconds=""
baseline_seconds=""
for round in $(seq "$rounds"); do
  rm -f "$catalog-wal" "$catalog-shm"
  cp "$work/catalog.before-seal"/* "$REEL_STORE/"
  rm -rf "$work/sealed"
  drop_caches
  start=$(now)
  "$reel" seal data --until latest --out "$work/sealed" ${REEL_SEAL_FLAGS:-} >"$work/seal.out"
  end=$(now)
  echo "round $round: seal $(seconds "$start" "$end") s"
  seal_seconds=$(fastest "$seal_seconds" "$(seconds "$start" "$end")")

  rm -f "$work/baseline.tar.zst.enc"
  drop_caches
  start=$(now)
  baseline_seal "$journal" "$work/baseline.tar.zst.enc"
  sync
  end=$(now)
  echo "round $round: baseline $(seconds "$start" "$end") s"
  baseline_seconds=$(fastest "$baseline_seconds" "$(seconds "$start" "$end")")
done
seal_mbps=$(mbps "$journaled" 0 "$seal_seconds")
baseline_mbps=$(mbps "$journaled" 0 "$baseline_seconds")
archive=$(ls "$work"/sealed/*.reel.tar)
archive_bytes=$(stat -c %s "$archive")
baseline_bytes=$(stat -c %s "$work/baseline.tar.zst.enc")
cat "$work/seal.out"

echo "seal: $seal_seconds s, $seal_mbps MB/s of journal, archive $archive_bytes bytes"
echo "baseline (tar | zstd -3 -T2 | openssl enc): $baseline_mbps MB/s, $baseline_bytes bytes"
echo "ingest + seal: $(awk -v i="$ingest_seconds" -v s="$seal_seconds" -v b="$journaled" 'BEGIN { printf "%.1f", b / (i + s) / 1e6 }') MB/s"
# The archive carries Reed–Solomon parity by default (`--parity 5`, docs/archive-format.md)
# and the baseline carries none: what comes before the PARITY member is said apart, for
# reading the size ratio (which counts the whole file, parity included).
protected_bytes=$(python3 -c 'import sys, tarfile
members = {m.name: m.offset for m in tarfile.open(sys.argv[1])}
print(members.get("PARITY", int(sys.argv[2])))' "$archive" "$archive_bytes")
echo "archive without its parity: $protected_bytes bytes, $(awk -v p="$protected_bytes" -v b="$baseline_bytes" 'BEGIN { printf "%.3f", p / b }')× the baseline"
awk -v r="$seal_mbps" -v b="$baseline_mbps" \
  'BEGIN { printf "RESULT seal-throughput reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=2.0\n", r, b, r / b }'
awk -v r="$archive_bytes" -v b="$baseline_bytes" \
  'BEGIN { printf "RESULT seal-size reel=%dB baseline=%dB ratio=%.2f target=0.95\n", r, b, b / r }'
