#!/usr/bin/env bash
# A realistic workload for a Reel demo or drill, on file systems mounted from volumes that
# `reel serve` exports (nbdfuse + a loop mount: the kernel is the NBD client).
#
#   samples/workload.sh files-load MOUNT [MB]   copy real files from /usr/share (default 24 MB)
#   samples/workload.sh files-edit MOUNT        edit, append to, rename and delete some of them
#   samples/workload.sh db-create MOUNT [ROWS]  a SQLite database with an inventory table
#   samples/workload.sh db-load MOUNT SECONDS   transactions (insert, update, delete) for SECONDS
#   samples/workload.sh db-check DBFILE         integrity check and row counts of a copy of the database
#
# Needs: sqlite3, coreutils, findutils.
set -euo pipefail

command=${1:?usage: workload.sh COMMAND MOUNT [ARG]}
target=${2:?usage: workload.sh COMMAND MOUNT [ARG]}

case "$command" in
files-load)
  limit=$((${3:-24} * 1024 * 1024))
  mkdir -p "$target/share"
  list=$(mktemp)
  copied=0
  files=0
  # Documentation, licenses, time zones, man pages: real text and binary files of all sizes.
  while IFS=$'\t' read -r size file; do
    [ $((copied + size)) -gt "$limit" ] && break
    printf '%s\0' "${file#/usr/share/}" >>"$list"
    copied=$((copied + size))
    files=$((files + 1))
  done < <(find /usr/share/doc /usr/share/common-licenses /usr/share/zoneinfo /usr/share/man /usr/share/i18n \
    -xdev -type f -size -4M -printf '%s\t%p\n' 2>/dev/null | sort -t$'\t' -k2)
  tar -C /usr/share --null -T "$list" -cf - | tar -C "$target/share" -xpf -
  rm -f "$list"
  echo "copied $files files ($((copied / 1024 / 1024)) MiB) from /usr/share"
  ;;
files-edit)
  cd "$target/share"
  mapfile -t texts < <(find . -type f -name '*.gz' -prune -o -type f -size -64k -print | sort | head -n 400)
  edited=0
  for ((i = 0; i < ${#texts[@]}; i += 7)); do
    printf '\n# edited by the Reel demo at %s\n' "$(date -u +%FT%TZ)" >>"${texts[$i]}"
    edited=$((edited + 1))
  done
  for ((i = 3; i < ${#texts[@]}; i += 11)); do
    sed -i 's/the/THE/g' "${texts[$i]}" 2>/dev/null || true
  done
  deleted=0
  for ((i = 1; i < ${#texts[@]}; i += 3)); do
    rm -f "${texts[$i]}"
    deleted=$((deleted + 1))
  done
  if [ -d zoneinfo/Europe ]; then rm -rf zoneinfo/Antarctica && mv zoneinfo/Europe zoneinfo/Europa; fi
  tar -czf ../share-snapshot.tar.gz common-licenses 2>/dev/null || true
  echo "edited $edited files, deleted $deleted, renamed a folder, wrote a tarball"
  ;;
db-create)
  rows=${3:-20000}
  sqlite3 "$target/inventory.db" >/dev/null <<EOF
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, item INTEGER NOT NULL, delta INTEGER NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_by_item ON ledger (item);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO items (name, qty, updated) SELECT 'item-' || i || '-' || hex(randomblob(12)), abs(random() % 1000), datetime('now') FROM n;
EOF
  echo "created $target/inventory.db with $(sqlite3 "$target/inventory.db" 'SELECT COUNT(*) FROM items') items"
  ;;
db-load)
  seconds=${3:?db-load needs SECONDS}
  end=$((SECONDS + seconds))
  transactions=0
  while [ $SECONDS -lt $end ]; do
    sqlite3 "$target/inventory.db" >/dev/null <<'EOF'
PRAGMA busy_timeout = 10000;
BEGIN;
INSERT INTO ledger (item, delta, at) SELECT id, abs(random() % 20) - 10, datetime('now') FROM items ORDER BY random() LIMIT 200;
UPDATE items SET qty = qty + 1, updated = datetime('now') WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 300);
DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 20);
INSERT INTO items (name, qty, updated) VALUES ('new-' || hex(randomblob(8)), 1, datetime('now'));
COMMIT;
EOF
    transactions=$((transactions + 1))
  done
  echo "$transactions transactions on $target/inventory.db"
  ;;
db-check)
  sqlite3 "$target" 'PRAGMA integrity_check;' | head -1
  sqlite3 "$target" "SELECT COUNT(*) || ' items, ' || (SELECT COUNT(*) FROM ledger) || ' ledger rows' FROM items;"
  ;;
*)
  echo "unknown command $command" >&2
  exit 64
  ;;
esac
