#!/usr/bin/env bash
# Two builds of reel on benchmarks/small-writes.sh's workload (issue #22, target 5): the
# same journal (a 64 MiB volume filled once, then WRITES random 4 KiB writes) ingested by
# each build in turn, $BENCH_ROUNDS rounds (default 2), caches dropped before each ingest
# and restore. For store format changes: OLD is the build before (a catalog it makes is
# migrated by NEW when NEW opens it, so each round starts from a copy of a store OLD
# initialised). reel-bench is taken from this checkout's release build.
# Usage: benchmarks/small-writes-ab.sh OLD-REEL NEW-REEL [WRITES]
# Prints per round: ingest time, catalog and pack bytes, restores at the oldest, middle
# and latest point; then RESULT lines for the catalog size and the ingest time (NEW
# against OLD; the best ingest round of each).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1")
new=$(realpath "$2")
writes=${3:-400000}
source benchmarks/lib.sh
work=$PWD/.bench-work/small-writes-ab-$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

head -c 67108864 /dev/urandom >"$work/fill.img"
export REEL_STORE=$work/template
"$old" init >/dev/null
"$old" volume create data --size 64M --block-size 512 >/dev/null
"$bench" workload "$REEL_STORE" data "$work/fill.img" 1 0 >/dev/null
"$bench" workload "$REEL_STORE" data "$work/fill.img" 0 "$writes" >/dev/null
rm -f "$work/fill.img"

declare -A best_ingest best_catalog
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    binary=${!side}
    rm -rf "$work/run"
    cp -a "$work/template" "$work/run"
    export REEL_STORE=$work/run
    drop_caches
    start=$(now)
    "$binary" ingest data >/dev/null
    end=$(now)
    ingest=$(seconds "$start" "$end")
    sqlite3 "$REEL_STORE/catalog.sqlite" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    catalog=$(stat -c %s "$REEL_STORE/catalog.sqlite")
    last=$("$binary" timeline data --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["last_seq"])')
    restores=""
    for point in seq:2 "seq:$((last / 2))" latest; do
      restores="$restores $(cold_restore_seconds "$binary" data "$point" "$work/restored.img")"
    done
    echo "round $round $side: ingest $ingest s, catalog $catalog B, packs $(du -sb "$REEL_STORE/packs" | cut -f1) B, restores (oldest, middle, latest)$restores s"
    best_ingest[$side]=$(fastest "${best_ingest[$side]:-}" "$ingest")
    best_catalog[$side]=$catalog
  done
done
awk -v n="${best_catalog[new]}" -v o="${best_catalog[old]}" -v w="$writes" \
  'BEGIN { printf "RESULT small-writes-ab-catalog reel=%.0fB baseline=%.0fB ratio=%.2f target=1.0 per-version=%.0fB\n", n, o, o / n, n / w }'
awk -v n="${best_ingest[new]}" -v o="${best_ingest[old]}" \
  'BEGIN { printf "RESULT small-writes-ab-ingest reel=%.2fs baseline=%.2fs ratio=%.2f target=1.0\n", n, o, o / n }'
