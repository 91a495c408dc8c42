#!/usr/bin/env bash
# Instant recovery (docs/clones.md): PostgreSQL 15 runs on a volume served by `reel serve`
# (nbdfuse + a loop mount, the real kernel as client). Someone deletes most of a table.
# The volume is cloned at the instant before the delete, in well under a second whatever
# its size; the clone is served (nothing copied: its live image reads the origin's
# history), mounted, and a second PostgreSQL started on it recovers and shows the rows,
# while the original volume keeps serving its own database. Then either
#   promote   (default) the clone becomes an independent volume, or
#   rollback  the original volume itself is rolled back to that instant, as one new
#             event in its history (the delete stays restorable).
# Everything happens in a scratch folder; nothing touches your stores.
# Needs root (mount, the postgres account), /dev/fuse, loop devices, PostgreSQL 15.
# Usage: samples/instant-recovery.sh [promote|rollback]
set -euo pipefail
cd "$(dirname "$0")/.."
ending=${1:-promote}
case "$ending" in promote | rollback) ;; *) echo "usage: $0 [promote|rollback]" >&2; exit 64 ;; esac
./scripts/setup-debian.sh >/dev/null
pg=/usr/lib/postgresql/15/bin
echo "== building reel (release)"
swift build -c release --static-swift-stdlib --product reel 2>&1 | tail -1
reel="$(swift build -c release --static-swift-stdlib --show-bin-path)/reel"

work=$(mktemp -d /tmp/reel-instant-XXXXXX)
chmod 711 "$work"
export REEL_STORE=$work/store
declare -A servers fusers postgres
cleanup() {
  set +e
  for side in "${!postgres[@]}"; do kill -INT "${postgres[$side]}" 2>/dev/null; done
  for side in "${!postgres[@]}"; do wait "${postgres[$side]}" 2>/dev/null; done
  for side in origin clone; do mountpoint -q "$work/$side/mnt" && umount "$work/$side/mnt"; done
  for side in "${!fusers[@]}"; do fusermount3 -u "$work/$side/fuse" 2>/dev/null || kill "${fusers[$side]}" 2>/dev/null; wait "${fusers[$side]}" 2>/dev/null; done
  for side in "${!servers[@]}"; do kill -TERM "${servers[$side]}" 2>/dev/null; wait "${servers[$side]}" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

as_postgres() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }
# serve SIDE VOLUME: reel serve of VOLUME on SIDE's socket, nbdfuse, the loop mount.
serve() {
  local side=$1 volume=$2
  mkdir -p "$work/$side/fuse" "$work/$side/mnt" "$work/$side/run"
  chmod 711 "$work/$side"
  "$reel" serve "$volume" --socket "$work/$side/nbd.sock" >"$work/$side/serve.log" 2>&1 &
  servers[$side]=$!
  until grep -q "Listening on" "$work/$side/serve.log" 2>/dev/null; do sleep 0.1; done
  grep "volume $volume:" "$work/$side/serve.log" | sed "s/^/   [$side] /"
  nbdfuse "$work/$side/fuse" "nbd+unix:///$volume?socket=$work/$side/nbd.sock" &
  fusers[$side]=$!
  until [ -e "$work/$side/fuse/nbd" ]; do sleep 0.1; done
}
mount_side() { mount -o loop "$work/$1/fuse/nbd" "$work/$1/mnt"; }
start_postgres() {
  local side=$1
  chown postgres: "$work/$side/run"
  # setpriv itself, not the as_postgres function: a function run with & is a subshell, whose
  # pid would get the signal, and a non-interactive shell's background jobs ignore SIGINT.
  setpriv --reuid=postgres --regid=postgres --clear-groups -- \
    "$pg/postgres" -D "$work/$side/mnt/data" -k "$work/$side/run" -c listen_addresses= \
    >"$work/$side/postgres.log" 2>&1 &
  postgres[$side]=$!
  until "$pg/pg_isready" -q -h "$work/$side/run"; do sleep 0.2; done
}
# wait, not kill -0: an exited child stays a zombie (and kill -0 succeeds) until reaped.
stop_postgres() { kill -INT "${postgres[$1]}"; wait "${postgres[$1]}" || true; unset "postgres[$1]"; }
unserve() {
  local side=$1
  umount "$work/$side/mnt"
  fusermount3 -u "$work/$side/fuse"; wait "${fusers[$side]}"; unset "fusers[$side]"
  kill -TERM "${servers[$side]}"; wait "${servers[$side]}"; unset "servers[$side]"
}
sql() { "$pg/psql" -X -A -t -q -h "$work/$1/run" -U postgres -d postgres -c "$2"; }

echo "== a 256 MiB volume served through nbdfuse, ext4, PostgreSQL 15 on it"
"$reel" init >/dev/null
"$reel" volume create db --size 256M >/dev/null
serve origin db
mkfs.ext4 -q -F -b 4096 "$work/origin/fuse/nbd"
mount_side origin
mkdir "$work/origin/mnt/data" && chown postgres: "$work/origin/mnt/data"
as_postgres "$pg/initdb" -D "$work/origin/mnt/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
start_postgres origin
sql origin "CREATE TABLE orders (id int PRIMARY KEY, amount int); INSERT INTO orders SELECT i, i % 97 FROM generate_series(1, 50000) i"
echo "   orders: $(sql origin "SELECT count(*) FROM orders")"
sleep 1
before=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 1
echo "== $(date -u +%T): the bad change: DELETE FROM orders WHERE id > 100"
sql origin "DELETE FROM orders WHERE id > 100"
echo "   orders on the original: $(sql origin "SELECT count(*) FROM orders")"

echo "== clone the volume at $before, the instant before the delete"
/usr/bin/time -f "   reel clone took %e s" "$reel" clone db --at "$before" --as db-recovered
serve clone db-recovered
mount_side clone
# The copy's lock file names the original's postmaster, which still runs.
rm -f "$work/clone/mnt/data/postmaster.pid"
start_postgres clone
echo "   orders on the clone (PostgreSQL recovered from its WAL): $(sql clone "SELECT count(*) FROM orders")"
echo "   orders on the original, still serving: $(sql origin "SELECT count(*) FROM orders")"
sql origin "INSERT INTO orders VALUES (100001, 1)"
sql clone "INSERT INTO orders VALUES (200001, 2)"
echo "   writes stay on their side: original has 200001? $(sql origin "SELECT count(*) FROM orders WHERE id = 200001"), clone has 100001? $(sql clone "SELECT count(*) FROM orders WHERE id = 100001")"
"$reel" timeline db-recovered | head -5 | sed 's/^/   /'

stop_postgres clone
unserve clone
if [ "$ending" = promote ]; then
  echo "== promote the clone: it no longer needs the original's history"
  "$reel" volume promote db-recovered
  "$reel" volume list | sed 's/^/   /'
else
  echo "== roll the original back to $before (one new event in its history)"
  stop_postgres origin
  unserve origin
  "$reel" rollback db --to "$before"
  serve origin db
  mount_side origin
  start_postgres origin
  echo "   orders on the original after the rollback: $(sql origin "SELECT count(*) FROM orders")"
  "$reel" timeline db | tail -4 | sed 's/^/   /'
fi
echo "== done"
