#!/usr/bin/env bash
# Capture under random sync writes, the way databases and VMs write: fio's nbd engine,
# random 4-64 KiB writes at iodepth 16, `--fsync=32` (which at iodepth 16 makes fio send
# a FLUSH every 2.5 to 3 writes, not every 32: nbdkit's stats filter counts as many as fio
# reports; the same for both servers), crc32c verify of every block after each pass.
# Through `reel serve` and through `nbdkit file` (a sparse file, as capture.sh) on the same
# disk, ROUNDS alternating rounds (Reel first), each round LOOPS passes over a SIZE volume.
# Per round: write IOPS, and p99 of write latency and of FLUSH latency (submission to
# completion, as fio sees them). The worst round decides:
#   RESULT capture-random-p99-write / -p99-flush: ratio = 1.5 × nbdkit's p99 / Reel's p99
#     of the round where that ratio is lowest; ratio >= 1 means Reel's p99 is within 1.5×
#     nbdkit's (target 1.0).
#   RESULT capture-random: the round with the lowest IOPS ratio (target 0.9).
# Usage: benchmarks/capture-random.sh [SIZE] [WORKDIR]   (SIZE default 1G; WORKDIR default a
# fresh folder under ./.bench-work on the same disk as the repo). BENCH_ROUNDS (3) and
# BENCH_LOOPS (3) change the rounds and the passes per round.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
work=${2:-$PWD/.bench-work/capture-random-$$}
random_rounds=${BENCH_ROUNDS:-3}
loops=${BENCH_LOOPS:-3}
mkdir -p "$work"
source benchmarks/servers.sh

for tool in fio nbdkit python3; do
  command -v "$tool" >/dev/null || { echo "capture-random.sh: $tool is missing (scripts/setup-debian.sh installs it)" >&2; exit 1; }
done
fio --enghelp=nbd >/dev/null 2>&1 || { echo "capture-random.sh: this fio has no nbd engine" >&2; exit 1; }

source benchmarks/lib.sh
bytes=$(numfmt --from=iec "$size")

# Runs the workload against URI and prints "IOPS P99_WRITE_MS P99_FLUSH_MS WRITES FLUSHES".
# Fails when fio does, including a verify mismatch.
run_fio() {
  local output=$work/fio.json
  if ! fio --name=random-sync --ioengine=nbd --uri="$1" --rw=randwrite --bsrange=4k-64k --iodepth=16 \
    --fsync=32 --verify=crc32c --verify_state_save=0 --size="$bytes" --loops="$loops" --lat_percentiles=1 \
    --output-format=json --output="$output" >"$work/fio.log" 2>&1; then
    echo "capture-random.sh: fio failed against $1:" >&2
    cat "$work/fio.log" "$output" >&2 || true
    exit 1
  fi
  python3 - "$output" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
if job["error"] != 0:
    sys.exit(f"capture-random.sh: fio reported error {job['error']}")
write, flush = job["write"], job["sync"]
p99 = lambda section: section["lat_ns"]["percentile"]["99.000000"] / 1e6
print(f"{write['iops']:.0f} {p99(write):.2f} {p99(flush):.2f} {write['total_ios']} {flush['total_ios']}")
EOF
}

# measure SOCKET URI SERVER...: starts SERVER, runs the workload against URI once SOCKET
# is there, stops the server; the figures go to $work/figures.
measure() {
  local socket=$1 uri=$2
  shift 2
  "$@" >/dev/null 2>"$work/server.log" &
  server_pid=$!
  wait_for_socket "$socket"
  run_fio "$uri" >"$work/figures"
  stop_server
}

"$reel" init --store "$work/store" >/dev/null

# See capture.sh: touch and free page cache first, so the first server is not the one
# that pays for the VM faulting fresh memory in.
dd if=/dev/zero of="$work/warm-up" bs=1M count=$(( 2 * bytes / 1048576 )) status=none
rm -f "$work/warm-up"

results=()
for round in $(seq 1 "$random_rounds"); do
  "$reel" volume create "random$round" --size "$bytes" --store "$work/store" >/dev/null
  sync
  measure "$work/reel$round.sock" "nbd+unix:///random$round?socket=$work/reel$round.sock" \
    "$reel" serve "random$round" --store "$work/store" --socket "$work/reel$round.sock"
  read -r reel_iops reel_write reel_flush reel_writes reel_flushes <"$work/figures"
  rm -rf "$work/store/volumes/random$round"

  rm -f "$work/baseline.img"
  truncate -s "$bytes" "$work/baseline.img"
  sync
  measure "$work/nbdkit$round.sock" "nbd+unix:///?socket=$work/nbdkit$round.sock" \
    nbdkit -f -U "$work/nbdkit$round.sock" file "$work/baseline.img"
  read -r base_iops base_write base_flush base_writes base_flushes <"$work/figures"
  rm -f "$work/baseline.img"

  printf 'round %d: reel serve %s IOPS, p99 write %s ms, p99 flush %s ms (%s writes, %s flushes)\n' \
    "$round" "$reel_iops" "$reel_write" "$reel_flush" "$reel_writes" "$reel_flushes"
  printf 'round %d: nbdkit file %s IOPS, p99 write %s ms, p99 flush %s ms (%s writes, %s flushes)\n' \
    "$round" "$base_iops" "$base_write" "$base_flush" "$base_writes" "$base_flushes"
  results+=("$reel_iops $base_iops $reel_write $base_write $reel_flush $base_flush")
done

# The round where each ratio is lowest, as "reel baseline ratio".
worst() {
  printf '%s\n' "${results[@]}" | awk -v r="$1" -v b="$2" -v scale="$3" -v inverse="$4" '
    { ratio = inverse ? scale * $b / $r : $r / $b
      if (NR == 1 || ratio < worst) { worst = ratio; reel = $r; base = $b } }
    END { printf "%s %s %.2f\n", reel, base, worst }'
}
read -r reel base ratio < <(worst 3 4 1.5 1)
echo "RESULT capture-random-p99-write reel=$reel baseline=$base ratio=$ratio target=1.0"
read -r reel base ratio < <(worst 5 6 1.5 1)
echo "RESULT capture-random-p99-flush reel=$reel baseline=$base ratio=$ratio target=1.0"
read -r reel base ratio < <(worst 1 2 1 0)
echo "RESULT capture-random reel=$reel baseline=$base ratio=$ratio target=0.9"
