#!/usr/bin/env bash
# Capture throughput: nbdcopy --flush of SIZE random bytes into `reel serve` over a Unix
# socket, against nbdkit's file plugin serving a plain file over a Unix socket on the same
# disk, in the same run. Reel journals every byte (checksummed) and syncs the journal on
# the final flush; its live image catches up in the background after the burst (at most
# half its lag limit, 1 GiB, is left to it while writes keep coming; docs/capture.md).
# nbdkit writes once and syncs the file.
# Then TLS: the same capture over TCP loopback, once through TLS with a pre-shared key
# (nbds://, AES-GCM) and once plain (--insecure-no-tls), alternating; target: TLS at
# least 0.7 of plain.
# Usage: benchmarks/capture.sh [SIZE] [WORKDIR]   (SIZE default 1G; WORKDIR default a
# fresh folder under ./.bench-work on the same disk as the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
work=${2:-$PWD/.bench-work/capture-$$}
scratch=${REEL_BENCH_SCRATCH:-.build-capture-release}
mkdir -p "$work"
source benchmarks/servers.sh

for tool in nbdcopy nbdkit psktool; do
  command -v "$tool" >/dev/null || { echo "capture.sh: $tool is missing (apt-get install libnbd-bin nbdkit gnutls-bin)" >&2; exit 1; }
done

swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product reel >/dev/null
reel=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/reel
bytes=$(numfmt --from=iec "$size")

# Prints MB/s of one nbdcopy run into URI.
timed_copy() {
  local start end
  start=$(date +%s.%N)
  nbdcopy --flush "$work/source.img" "$1"
  end=$(date +%s.%N)
  awk -v n="$bytes" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) / 1e6 }'
}

head -c "$bytes" /dev/urandom >"$work/source.img"
"$reel" init --store "$work/store" >/dev/null

# In a fresh VM the first write to a never-used page of guest memory is many times slower
# than later ones, which would penalise whichever server runs first. Touch and free
# enough page cache for both servers first; each run's files are deleted after it.
dd if=/dev/zero of="$work/warm-up" bs=1M count=$(( 3 * bytes / 1048576 )) status=none
rm -f "$work/warm-up"

# Alternating runs; each figure is the better of two.
best_baseline=0
best_reel=0
for round in 1 2; do
  rm -f "$work/baseline.img"
  truncate -s "$bytes" "$work/baseline.img"
  sync
  nbdkit -f -U "$work/nbdkit$round.sock" file "$work/baseline.img" &
  server_pid=$!
  wait_for_socket "$work/nbdkit$round.sock"
  baseline=$(timed_copy "nbd+unix:///?socket=$work/nbdkit$round.sock")
  stop_server
  rm -f "$work/baseline.img"

  "$reel" volume create "bench$round" --size "$bytes" --store "$work/store" >/dev/null
  sync
  "$reel" serve "bench$round" --store "$work/store" --socket "$work/reel$round.sock" >/dev/null 2>"$work/serve.log" &
  server_pid=$!
  wait_for_socket "$work/reel$round.sock"
  reel_mbps=$(timed_copy "nbd+unix:///bench$round?socket=$work/reel$round.sock")
  stop_server
  rm -rf "$work/store/volumes/bench$round"

  printf 'round %d: nbdkit file %s MB/s, reel serve %s MB/s\n' "$round" "$baseline" "$reel_mbps"
  best_baseline=$(awk -v x="$baseline" -v y="$best_baseline" 'BEGIN { print (x > y ? x : y) }')
  best_reel=$(awk -v x="$reel_mbps" -v y="$best_reel" 'BEGIN { print (x > y ? x : y) }')
done

awk -v r="$best_reel" -v b="$best_baseline" \
  'BEGIN { printf "RESULT capture reel=%.1f baseline=%.1f ratio=%.2f target=0.8\n", r, b, r / b }'

# Prints the TCP port `reel serve --listen 127.0.0.1:0` reports in $1 (its stdout).
wait_for_port() {
  for _ in $(seq 1 300); do
    port=$(grep -o 'Listening on tcp 127.0.0.1:[0-9]*' "$1" | head -1 | sed 's/.*://')
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.05
  done
  echo "capture.sh: reel serve printed no TCP port after 15 s" >&2
  exit 1
}

psktool -u bench -p "$work/keys.psk" >/dev/null
best_plain=0
best_tls=0
for round in 1 2; do
  for kind in plain tls; do
    name="tcp-$kind$round"
    "$reel" volume create "$name" --size "$bytes" --store "$work/store" >/dev/null
    sync
    if [ "$kind" = tls ]; then
      flags=(--tls-psk "$work/keys.psk")
    else
      flags=(--insecure-no-tls)
    fi
    "$reel" serve "$name" --store "$work/store" --listen 127.0.0.1:0 "${flags[@]}" \
      >"$work/serve.out" 2>"$work/serve.log" &
    server_pid=$!
    port=$(wait_for_port "$work/serve.out")
    if [ "$kind" = tls ]; then
      mbps=$(timed_copy "nbds://bench@127.0.0.1:$port/$name?tls-psk-file=$work/keys.psk")
      best_tls=$(awk -v x="$mbps" -v y="$best_tls" 'BEGIN { print (x > y ? x : y) }')
    else
      mbps=$(timed_copy "nbd://127.0.0.1:$port/$name")
      best_plain=$(awk -v x="$mbps" -v y="$best_plain" 'BEGIN { print (x > y ? x : y) }')
    fi
    stop_server
    rm -rf "$work/store/volumes/$name"
    printf 'round %d: reel serve over TCP, %s: %s MB/s\n' "$round" "$kind" "$mbps"
  done
done

awk -v r="$best_tls" -v b="$best_plain" \
  'BEGIN { printf "RESULT capture-tls reel=%.1f baseline=%.1f ratio=%.2f target=0.7\n", r, b, r / b }'
