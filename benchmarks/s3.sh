#!/usr/bin/env bash
# Object-storage benchmark, one run on one disk, against a real SeaweedFS started here on
# loopback (credentials required, stopped by PID at the end):
#   s3-export: `reel export` of sealed archives to s3://bench/set (multipart upload, HEAD
#     check of size and SHA-256, then the full read-back verification every export does)
#     against `curl --aws-sigv4 -T` PUTs of the same files; target ratio ≥ 0.9.
#   s3-rehydrate: `reel rehydrate --from s3://…` into an empty store against
#     `reel rehydrate --from dir:…` of a folder copy of the same archives on the same disk;
#     target ratio ≥ 0.7.
#   Peak RSS of export and rehydrate from the bucket (/usr/bin/time), target ≤ 300 MiB.
# Each side is timed in BENCH_ROUNDS (default 2) alternating rounds; the fastest counts.
# Usage: benchmarks/s3.sh [SIZE]   (SIZE of journaled history, default 2G: ~1 GiB of archives)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
work=$PWD/.bench-work/s3-$$
mkdir -p "$work"
weed_pid=""
cleanup() {
  if [ -n "$weed_pid" ]; then
    kill "$weed_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$weed_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
source benchmarks/lib.sh

weed=${REEL_WEED:-$PWD/.tools/venv/bin/weed}
[ -x "$weed" ] || weed=$(command -v weed || true)
[ -n "$weed" ] || { echo "weed (SeaweedFS) not found: run scripts/setup-debian.sh" >&2; exit 1; }

# Ports below the kernel's ephemeral range (no outgoing connection takes one first), each
# free when chosen; every gRPC port is named too (weed's default, port + 10000, can pass 65535).
free_port() {
  python3 -c '
import random, socket
while True:
    port = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        s.close()'
}
access_key=bench$RANDOM$RANDOM
secret_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
cat >"$work/identities.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$access_key","secretKey":"$secret_key"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
chmod 600 "$work/identities.json"
s3_port=$(free_port)
mkdir -p "$work/weed"
echo "== starting SeaweedFS ($weed) on 127.0.0.1:$s3_port"
"$weed" server -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="$(free_port)" -master.port.grpc="$(free_port)" -master.volumeSizeLimitMB=1024 \
  -master.telemetry=false -master.resumeState=false -volume.max=0 \
  -volume.port="$(free_port)" -volume.port.grpc="$(free_port)" \
  -filer -filer.port="$(free_port)" -filer.port.grpc="$(free_port)" \
  -s3 -s3.port="$s3_port" -s3.port.grpc="$(free_port)" -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.config="$work/identities.json" >"$work/weed.log" 2>&1 &
weed_pid=$!
endpoint=http://127.0.0.1:$s3_port
for _ in $(seq 300); do
  curl -s -o /dev/null "$endpoint/" && break
  kill -0 "$weed_pid" 2>/dev/null || { cat "$work/weed.log" >&2; exit 1; }
  sleep 0.1
done
export AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key AWS_REGION=us-east-1
export REEL_S3_ENDPOINT=$endpoint
s3curl() { curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" "$@"; }
s3curl -X PUT "$endpoint/bench" >/dev/null

echo "== setup (not timed): journal, seal, baseline copy of the archives"
journal_real_workload "$work" "$size"
"$reel" seal data --until latest --out "$work/sealed" >/dev/null
archives=("$work"/sealed/*.reel.tar)
archive_bytes=$(du -cb "${archives[@]}" | tail -1 | cut -f1)
echo "archives: ${#archives[@]}, $archive_bytes bytes"

export_seconds=""
put_seconds=""
for round in $(seq "$rounds"); do
  echo "== round $round: reel export to s3://bench/reel-$round"
  "$reel" media label "s3://bench/reel-$round" --name "S3R00$round" --media-set "bench-$round" >/dev/null
  drop_caches
  start=$(now)
  /usr/bin/time -f "%M" -o "$work/export-rss" \
    "$reel" export "${archives[@]}" --to "s3://bench/reel-$round" --media-set "bench-$round" >/dev/null
  end=$(now)
  echo "round $round: export $(seconds "$start" "$end") s, peak RSS $(cat "$work/export-rss") KiB"
  export_seconds=$(fastest "$export_seconds" "$(seconds "$start" "$end")")

  echo "== round $round: baseline: curl --aws-sigv4 -T of the same files"
  drop_caches
  start=$(now)
  for archive in "${archives[@]}"; do
    s3curl -T "$archive" "$endpoint/bench/curl-$round/$(basename "$archive")" >/dev/null
  done
  end=$(now)
  echo "round $round: curl PUT $(seconds "$start" "$end") s"
  put_seconds=$(fastest "$put_seconds" "$(seconds "$start" "$end")")
done

echo "== setup (not timed): the same archives in a dir: folder on the same disk"
"$reel" media label "dir:$work/folder" --name DIR001 --media-set folder >/dev/null
"$reel" export "${archives[@]}" --to "dir:$work/folder" --media-set folder >/dev/null
unset REEL_STORE

s3_rehydrate_seconds=""
dir_rehydrate_seconds=""
for round in $(seq "$rounds"); do
  echo "== round $round: reel rehydrate --from s3://bench/reel-1"
  rm -rf "$work/dr-s3"
  drop_caches
  start=$(now)
  /usr/bin/time -f "%M" -o "$work/rehydrate-rss" \
    "$reel" rehydrate --from "s3://bench/reel-1" --store "$work/dr-s3" >/dev/null
  end=$(now)
  echo "round $round: rehydrate from s3 $(seconds "$start" "$end") s, peak RSS $(cat "$work/rehydrate-rss") KiB"
  s3_rehydrate_seconds=$(fastest "$s3_rehydrate_seconds" "$(seconds "$start" "$end")")

  echo "== round $round: reel rehydrate --from dir: (baseline)"
  rm -rf "$work/dr-dir"
  drop_caches
  start=$(now)
  /usr/bin/time -f "%M" -o "$work/dir-rehydrate-rss" \
    "$reel" rehydrate --from "dir:$work/folder" --store "$work/dr-dir" >/dev/null
  end=$(now)
  echo "round $round: rehydrate from dir $(seconds "$start" "$end") s, peak RSS $(cat "$work/dir-rehydrate-rss") KiB"
  dir_rehydrate_seconds=$(fastest "$dir_rehydrate_seconds" "$(seconds "$start" "$end")")
done

echo "== the rehydrated store restores what the original holds"
"$reel" restore data --store "$work/dr-s3" --at "benchmark end" --output "$work/from-s3.img" >/dev/null
"$reel" restore data --store "$work/store" --at "benchmark end" --output "$work/original.img" >/dev/null
cmp "$work/from-s3.img" "$work/original.img"
rm -f "$work/from-s3.img" "$work/original.img"

export_rss_mib=$(($(cat "$work/export-rss") / 1024))
rehydrate_rss_mib=$(($(cat "$work/rehydrate-rss") / 1024))
echo "export: $export_seconds s ($(mbps "$archive_bytes" 0 "$export_seconds") MB/s); curl PUT: $put_seconds s ($(mbps "$archive_bytes" 0 "$put_seconds") MB/s)"
echo "rehydrate from s3: $s3_rehydrate_seconds s; from dir: $dir_rehydrate_seconds s"
echo "peak RSS: export $export_rss_mib MiB, rehydrate $rehydrate_rss_mib MiB"
awk -v r="$export_rss_mib" -v b="$rehydrate_rss_mib" \
  'BEGIN { m = r > b ? r : b; printf "RESULT s3-peak-rss reel=%dMiB baseline=300MiB ratio=%.2f target=1.0\n", m, 300 / m }'
awk -v r="$s3_rehydrate_seconds" -v b="$dir_rehydrate_seconds" \
  'BEGIN { printf "RESULT s3-rehydrate reel=%.2fs baseline=%.2fs ratio=%.2f target=0.7\n", r, b, b / r }'
awk -v r="$export_seconds" -v b="$put_seconds" \
  'BEGIN { printf "RESULT s3-export reel=%.2fs baseline=%.2fs ratio=%.2f target=0.9\n", r, b, b / r }'
