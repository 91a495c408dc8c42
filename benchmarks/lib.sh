# Shared helpers for the benchmark scripts: source it after `cd` to the repository root.
# Builds release binaries and sets $reel and $bench.
swift build -c release --static-swift-stdlib --product reel >/dev/null
swift build -c release --static-swift-stdlib --product reel-bench >/dev/null
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
reel=$bin/reel
bench=$bin/reel-bench

drop_caches() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi; }
now() { date +%s.%N; }
# mbps BYTES START END
mbps() { awk -v b="$1" -v a="$2" -v c="$3" 'BEGIN { printf "%.1f", b / (c - a) / 1e6 }'; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# fastest PREVIOUS SECONDS: the smaller of two timings (PREVIOUS empty on the first round).
fastest() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b + 0 < a + 0) print b; else print a }'; }
# cold_restore_seconds REEL VOLUME POINT OUTPUT: `reel restore` into OUTPUT (replaced)
# with caches dropped first and the image synced; prints the seconds it took, to the
# millisecond (a restore of 64 MiB takes about 0.15 s: hundredths would move a ratio of
# two of them by up to 7%).
cold_restore_seconds() {
  rm -f "$4"
  drop_caches
  local start end
  start=$(now)
  "$1" restore "$2" --at "$3" --output "$4" >/dev/null
  sync
  end=$(now)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
# Rounds each side of a comparison is timed, alternating Reel and the baseline; the fastest
# round of each counts. On the machines measured (virtual, 2 vCPUs), whatever ran first
# after the set-up paid for the host faulting the guest's freshly freed memory back in:
# up to 1.5 s of a 5 s rehydration.
rounds=${BENCH_ROUNDS:-2}

# journal_real_workload WORK SIZE: a store in WORK/store with a key and one volume `data`
# whose journal holds the first SIZE bytes of a tar of /usr written in order, then 10,000
# small 4 KiB writes and a bookmark "benchmark end". Sets $journal and $journaled.
journal_real_workload() {
  local work=$1 bytes
  bytes=$(numfmt --from=iec "$2")
  tar -cf - /usr/share /usr/lib /usr/bin 2>/dev/null | head -c "$bytes" >"$work/source.img" || true
  local actual
  actual=$(stat -c %s "$work/source.img")
  export REEL_STORE=$work/store REEL_PASSPHRASE=benchmark REEL_KEY=$work/master.key
  "$reel" init >/dev/null
  "$reel" key create --out "$REEL_KEY" >/dev/null
  "$reel" volume create data --size "$actual" --block-size 512 >/dev/null
  "$bench" workload "$REEL_STORE" data "$work/source.img" 1 10000 "$work/small-writes.bin"
  rm -f "$work/small-writes.bin" "$work/source.img"
  journal="$REEL_STORE/volumes/data/journal"
  journaled=$(du -sb "$journal" | cut -f1)
  echo "journal: $journaled bytes"
}

# The seal benchmark's baseline: tar | zstd -3 -T2 | openssl enc of a journal folder.
baseline_seal() { tar -cf - -C "$1" . | zstd -3 -T2 -q -c | openssl enc -aes-256-ctr -pbkdf2 -pass pass:benchmark -out "$2"; }
