#!/usr/bin/env bash
# `reel bisect` over a long history (docs/databases.md): a volume whose journal holds
# RECORDS write records (100,000 by default) made through `reel serve` by one qemu-io
# session of 512-byte writes (no FUA: the cache mode is writeback) outside the file system, and one write, at a record the
# script chooses, that changes the content of /mail/inbox (an mbox) inside it. Then
# `reel bisect --file /mail/inbox` over the whole history (after `reel ingest`, so only the
# search is timed): it must name that record, in at most 20 evaluations
# (⌈log2 100,000⌉ + 2 = 19).                         target ratio = 20 / evaluations ≥ 1
# Usage: benchmarks/databases-bisect.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-100000}
work=$PWD/.bench-work/databases-bisect-$$
mkdir -p "$work"
server_pid=
cleanup() {
  set +e
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

source benchmarks/lib.sh
export REEL_STORE=$work/store

echo "== a volume: 64 MiB of ext4 holding /mail/inbox, in an 80 MiB volume of 512-byte blocks"
mkdir -p "$work/src/mail"
for n in $(seq 1 40); do
  printf 'From sender%d@example.org Sat Dec  5 01:00:%02d 2026\nSubject: message %d\n\nbody %d\n\n' \
    "$n" "$n" "$n" "$n"
done >"$work/src/mail/inbox"
truncate -s 80M "$work/vm.img"
mkfs.ext4 -q -F -b 4096 -d "$work/src" "$work/vm.img" 64M
block=$(debugfs -R "bmap /mail/inbox 0" "$work/vm.img" 2>/dev/null)
"$reel" init >/dev/null
"$reel" volume create vm --from "$work/vm.img" --block-size 512 >/dev/null

# Record `change` (counted from 1) rewrites the inbox's first block; every other record
# writes 512 bytes in the 16 MiB after the file system, which no file reads.
change=$((records * 61 / 100 + 7))
echo "== $records write records through reel serve; record $change changes /mail/inbox"
awk -v n="$records" -v change="$change" -v block="$block" 'BEGIN {
  for (i = 1; i <= n; i++) {
    if (i == change) printf "write -P 0x2a %d 4096\n", block * 4096
    else printf "write -P 0x%02x %d 512\n", i % 250 + 1, 70 * 1048576 + (i % 16384) * 512
  }
  print "flush"
}' >"$work/writes.qemu-io"
"$reel" serve vm --socket "$work/nbd.sock" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do [ -S "$work/nbd.sock" ] && break; sleep 0.1; done
start=$(now)
qemu-io -t writeback -f raw "nbd+unix:///vm?socket=$work/nbd.sock" <"$work/writes.qemu-io" >"$work/qemu-io.out"
echo "written in $(seconds "$start" "$(now)") s"
kill "$server_pid"
wait "$server_pid" || true
server_pid=
"$reel" ingest vm >/dev/null

echo "== reel bisect vm --from seq:0 --to latest --file /mail/inbox"
start=$(now)
"$reel" bisect vm --from seq:0 --to latest --file /mail/inbox --json >"$work/bisect.json"
end=$(now)
elapsed=$(seconds "$start" "$end")
read -r evaluations found total < <(python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
print(len(report["evaluations"]), report["after"]["seq"] if report["after"] else "none", report["records"])
' "$work/bisect.json")
# The change's seq, from the journal: the record written at the inbox's offset.
expected=$("$reel" journal dump vm | awk -F'\t' -v o="offset=$((block * 4096))" '$3 == "write" && $4 == o { print $1 }')
echo "records $total, evaluations $evaluations, change found at seq $found (written at seq $expected), $elapsed s"
[ "$found" = "$expected" ] || { echo "bisect found seq $found, the change is seq $expected" >&2; exit 1; }
awk -v e="$evaluations" -v s="$elapsed" -v n="$total" \
  'BEGIN { printf "RESULT databases-bisect reel=%devaluations baseline=20evaluations ratio=%.2f target=1.0 time=%.2fs records=%d\n", e, 20 / e, s, n }'
