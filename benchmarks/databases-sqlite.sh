#!/usr/bin/env bash
# SQLite in place (docs/databases.md): `reel sql --at` SELECT count(*) on a SIZE SQLite
# database inside an ext4 volume, against restoring the volume, loop-mounting it and running
# sqlite3 on it (page cache dropped before each). The database is in WAL mode with its last
# transaction only in the WAL, so both sides recover the WAL; the table has an index on a
# small column, as real tables do, so count(*) reads that index on both sides.
#                                             ratio = baseline / reel, target ≥ 10
# Usage: benchmarks/databases-sqlite.sh [SIZE]   (the database, default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
work=$PWD/.bench-work/databases-sqlite-$$
mkdir -p "$work/src" "$work/mnt"
cleanup() {
  set +e
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  rm -rf "$work"
}
trap cleanup EXIT

source benchmarks/lib.sh

bytes=$(numfmt --from=iec "$size")
rows=$((bytes / 1380))
echo "== a $size SQLite database ($rows rows of ~1 KiB) in WAL mode, its last transaction only in the WAL"
python3 - "$work" "$rows" <<'PY'
import sqlite3, shutil, sys
work, rows = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(work + '/live.db', isolation_level=None)
c.execute('PRAGMA journal_mode=WAL')
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('PRAGMA synchronous=OFF')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, payload BLOB)')
c.execute('''INSERT INTO t(k, payload) SELECT x % 1000, randomblob(1024)
             FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c)''', (rows,))
c.execute('CREATE INDEX t_k ON t(k)')
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
c.execute('''INSERT INTO t(k, payload) SELECT x, randomblob(1024)
             FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c)''')
shutil.copy(work + '/live.db', work + '/src/big.db')
shutil.copy(work + '/live.db-wal', work + '/src/big.db-wal')
PY
rm -f "$work"/live.db*
db_bytes=$(stat -c %s "$work/src/big.db")
volume_bytes=$(( (db_bytes * 5 / 4 + (64 << 20)) / 4096 * 4096 ))
mkfs.ext4 -q -F -b 4096 -d "$work/src" "$work/fs.img" "$((volume_bytes / 1024))k"
rm -rf "$work/src"
export REEL_STORE=$work/store
"$reel" init >/dev/null
"$reel" volume create data --from "$work/fs.img" >/dev/null
rm -f "$work/fs.img"
"$reel" ingest data >/dev/null
"$reel" bookmark data loaded >/dev/null
"$reel" ingest data >/dev/null
echo "database: $db_bytes bytes; volume: $volume_bytes bytes"

query="SELECT count(*) FROM t"
reel_best= baseline_best=
for round in $(seq 1 "$rounds"); do
  drop_caches
  start=$(now)
  reel_count=$("$reel" sql data --at loaded --db /big.db --csv "$query" | tail -n 1)
  end=$(now)
  reel_best=$(fastest "$reel_best" "$(seconds "$start" "$end")")

  rm -f "$work/restored.img"
  drop_caches
  start=$(now)
  "$reel" restore data --at loaded --output "$work/restored.img" >/dev/null
  # Writable: the kernel may replay the ext4 journal, sqlite3 recovers the WAL (a scratch copy).
  mount -o loop "$work/restored.img" "$work/mnt"
  baseline_count=$(sqlite3 "$work/mnt/big.db" "$query")
  end=$(now)
  umount "$work/mnt"
  baseline_best=$(fastest "$baseline_best" "$(seconds "$start" "$end")")
  echo "round $round: reel sql ${reel_best}s best, restore + mount + sqlite3 ${baseline_best}s best; counts $reel_count / $baseline_count"
  if [ "$reel_count" != "$baseline_count" ] || [ "$reel_count" != "$((rows + 1000))" ]; then
    echo "different answers: reel $reel_count, sqlite3 $baseline_count, expected $((rows + 1000))" >&2
    exit 1
  fi
done

awk -v r="$reel_best" -v b="$baseline_best" \
  'BEGIN { printf "RESULT databases-sqlite-count reel=%.2fs baseline=%.2fs ratio=%.2f target=10\n", r, b, b / r }'
