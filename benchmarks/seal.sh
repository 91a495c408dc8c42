#!/usr/bin/env bash
# Seal benchmark, one run on one disk: seal 1 GiB of journaled writes of real file data
# (the first SIZE of a tar of /usr, plus 10,000 small 4 KiB writes) into one archive —
# deduplicated, indexed, encrypted, fsynced, read back from disk and verified with the key —
# against `tar -cf - <journal segments> | zstd -3 -T2 | openssl enc -aes-256-ctr -pbkdf2`
# of the same segments (then sync).
#   throughput: bytes journaled / wall time, target ≥ 1.0× the baseline
#   size:       baseline output / archive size, target ≥ 0.95 (archive ≤ 1.05× baseline)
# The live store is brought up to date first (`reel serve` does that continuously); that
# ingest is timed and reported on its own.
# Usage: benchmarks/seal.sh [SIZE]   (SIZE default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
bytes=$(numfmt --from=iec "$size")
work=$PWD/.bench-work/seal-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

swift build -c release --product reel >/dev/null
swift build -c release --product reel-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
reel=$bin/reel
bench=$bin/reel-bench
drop_caches() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi; }
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v a="$2" -v c="$3" 'BEGIN { printf "%.1f", b / (c - a) / 1e6 }'; }

echo "== journal $size of real data (a tar of /usr) and 10,000 small writes"
tar -cf - /usr/share /usr/lib /usr/bin 2>/dev/null | head -c "$bytes" >"$work/source.img" || true
actual=$(stat -c %s "$work/source.img")
export REEL_STORE=$work/store REEL_PASSPHRASE=benchmark REEL_KEY=$work/master.key
"$reel" init >/dev/null
"$reel" key create --out "$REEL_KEY" >/dev/null
"$reel" volume create data --size "$actual" --block-size 512 >/dev/null
"$bench" workload "$REEL_STORE" data "$work/source.img" 1 10000 "$work/small-writes.bin"
rm -f "$work/small-writes.bin"
journal="$REEL_STORE/volumes/data/journal"
journaled=$(du -sb "$journal" | cut -f1)
echo "journal: $journaled bytes"

start=$(now)
"$reel" ingest data >/dev/null
end=$(now)
ingest_seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
echo "ingest (done continuously by reel serve): $ingest_seconds s"

drop_caches
start=$(now)
"$reel" seal data --until latest --out "$work/sealed" >"$work/seal.out"
end=$(now)
seal_mbps=$(mbps "$journaled" "$start" "$end")
seal_seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
archive=$(ls "$work"/sealed/*.reel.tar)
archive_bytes=$(stat -c %s "$archive")
cat "$work/seal.out"

drop_caches
start=$(now)
tar -cf - -C "$journal" . | zstd -3 -T2 -q -c |
  openssl enc -aes-256-ctr -pbkdf2 -pass pass:benchmark -out "$work/baseline.tar.zst.enc"
sync
end=$(now)
baseline_mbps=$(mbps "$journaled" "$start" "$end")
baseline_bytes=$(stat -c %s "$work/baseline.tar.zst.enc")

echo "seal: $seal_seconds s, $seal_mbps MB/s of journal, archive $archive_bytes bytes"
echo "baseline (tar | zstd -3 -T2 | openssl enc): $baseline_mbps MB/s, $baseline_bytes bytes"
echo "ingest + seal: $(awk -v i="$ingest_seconds" -v s="$seal_seconds" -v b="$journaled" 'BEGIN { printf "%.1f", b / (i + s) / 1e6 }') MB/s"
awk -v r="$seal_mbps" -v b="$baseline_mbps" \
  'BEGIN { printf "RESULT seal-throughput reel=%.1fMB/s baseline=%.1fMB/s ratio=%.2f target=1.0\n", r, b, r / b }'
awk -v r="$archive_bytes" -v b="$baseline_bytes" \
  'BEGIN { printf "RESULT seal-size reel=%dB baseline=%dB ratio=%.2f target=0.95\n", r, b, b / r }'
