#!/usr/bin/env bash
# `reel pg` (docs/databases.md): pg_dump of one small table from a ~1 GiB PostgreSQL 15
# cluster at an instant that needs crash recovery, against the way without Reel: restore
# the volume, loop-mount it, start PostgreSQL on it, pg_dump the table, stop, remove the
# restored image (page cache dropped before each side; both sides do the same crash
# recovery, and both remove what they wrote, as reel pg does its copy). `reel pg` uses its
# default scratch folder (memory when the copy fits); the baseline restores into this
# folder on disk, as a user would.                                      target ratio ≥ 2
# Usage: benchmarks/databases-pg.sh [SCALE]   (pgbench scale, default 60: ~1 GiB; 2 to try it)
# Needs root (loop mount; the servers run as the postgres account) and postgresql-15.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-60}
bin15=/usr/lib/postgresql/15/bin
work=$PWD/.bench-work/pg-$$
mkdir -p "$work"
chmod 755 "$work"
server_pid=
cleanup() {
  set +e
  if [ -n "$server_pid" ]; then kill -INT "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  rm -rf "$work"
}
trap cleanup EXIT

source benchmarks/lib.sh

as_postgres=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
# start_server DATADIR: PostgreSQL on a socket in $work/socket only; sets $server_pid (setpriv
# becomes postgres: the same PID).
start_server() {
  "${as_postgres[@]}" "$bin15/postgres" -D "$1" -k "$work/socket" -c listen_addresses= >>"$work/postgres.log" 2>&1 &
  server_pid=$!
  until "$bin15/pg_isready" -q -h "$work/socket" -U postgres; do
    kill -0 "$server_pid" 2>/dev/null || { tail "$work/postgres.log"; exit 1; }
    sleep 0.1
  done
}
stop_server() { kill "-$1" "$server_pid"; wait "$server_pid" || true; server_pid=; }
client() { "$@" -h "$work/socket" -U postgres; }

echo "== a PostgreSQL 15 cluster, pgbench scale $scale, and one small table"
mkdir -p "$work/fs" "$work/socket" "$work/mnt"
chown postgres:postgres "$work/fs" "$work/socket"
"${as_postgres[@]}" "$bin15/initdb" -D "$work/fs/data" -U postgres -A trust --no-sync >/dev/null
start_server "$work/fs/data"
client "$bin15/pgbench" -i -q -s "$scale" postgres >/dev/null 2>&1
client "$bin15/psql" -X -q -c "CREATE TABLE one_table AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 1000) g" postgres
client "$bin15/psql" -X -q -c "CHECKPOINT" postgres
# Some load after the checkpoint, then a crash: both sides must recover.
client "$bin15/pgbench" -n -c 2 -T 5 postgres >/dev/null 2>&1
stop_server QUIT
cluster_bytes=$(du -sb "$work/fs/data" | cut -f1)
echo "cluster: $((cluster_bytes >> 20)) MiB"
image_mib=$(((cluster_bytes >> 20) * 3 / 2 + 256))
mkfs.ext4 -q -F -b 4096 -d "$work/fs" "$work/fs.img" "${image_mib}M"
rm -rf "$work/fs"
export REEL_STORE=$work/store
"$reel" init >/dev/null
"$reel" volume create data --size "${image_mib}M" --from "$work/fs.img" >/dev/null
rm -f "$work/fs.img"
# The store brought up to date before any timing (`reel serve` does that continuously):
# otherwise the first timed command ingests the base image (~3 s in round 1).
"$reel" ingest data >/dev/null
rows() { grep -c -E '^[0-9]+	' "$1" || true; }

reel_best= baseline_best=
for round in $(seq 1 "$rounds"); do
  drop_caches
  start=$(now)
  "$reel" pg data --at latest --pgdata /data -- -t one_table >"$work/reel.sql"
  end=$(now)
  reel_best=$(fastest "$reel_best" "$(seconds "$start" "$end")")
  [ "$(rows "$work/reel.sql")" = 1000 ] || { echo "reel pg: $(rows "$work/reel.sql") rows, not 1000"; exit 1; }

  drop_caches
  start=$(now)
  "$reel" restore data --at latest --output "$work/restored.img" --force >/dev/null
  mount -o loop "$work/restored.img" "$work/mnt"
  start_server "$work/mnt/data"
  client "$bin15/pg_dump" -t one_table postgres >"$work/baseline.sql"
  stop_server INT
  umount "$work/mnt"
  unmounted=$(now)
  # The restored image goes as reel pg's copy goes, inside the timing: unlinking either
  # frees its pages (page cache, tmpfs) on the calling thread.
  rm -f "$work/restored.img"
  end=$(now)
  echo "round $round: baseline $(seconds "$start" "$unmounted")s up to the unmount, $(seconds "$start" "$end")s with the image removed"
  baseline_best=$(fastest "$baseline_best" "$(seconds "$start" "$end")")
  [ "$(rows "$work/baseline.sql")" = 1000 ] || { echo "baseline: $(rows "$work/baseline.sql") rows, not 1000"; exit 1; }
  echo "round $round: reel pg ${reel_best}s, restore + mount + start + pg_dump ${baseline_best}s (best so far)"
done
ratio=$(awk -v a="$baseline_best" -v b="$reel_best" 'BEGIN { printf "%.2f", a / b }')
echo "RESULT databases-pg reel=${reel_best}s baseline=${baseline_best}s ratio=$ratio target=2"
