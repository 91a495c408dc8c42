#!/usr/bin/env bash
# Disaster-recovery drill: capture an ext4 file system (real files from /usr/share, edits,
# deletes, a SQLite database under updates) through `reel serve` + nbdfuse + a loop mount,
# with bookmarks; seal; export to a vtape media set that spans cartridges; then lose
# everything but the cartridges and a paper copy of the key: delete the store, type the
# key back in, rehydrate, restore every bookmark and an instant, compare sha256 with what
# the device held, and mount each restored file system read-only to check a file and a
# database row. Everything happens in a scratch folder; nothing touches your stores.
# Needs root (mount), /dev/fuse, loop devices. Usage: samples/dr-drill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh >/dev/null
echo "== building reel (release)"
swift build -c release --static-swift-stdlib --product reel 2>&1 | tail -1
reel="$(swift build -c release --static-swift-stdlib --show-bin-path)/reel"

work=$(mktemp -d /tmp/reel-drill-XXXXXX)
export REEL_STORE=$work/store REEL_PASSPHRASE="drill passphrase" REEL_KEY=$work/master.key
socket=$work/nbd.sock
fuse=$work/fuse
mnt=$work/mnt
server="" fuser=""
cleanup() {
  mountpoint -q "$mnt" && umount "$mnt" || true
  if [ -n "$fuser" ] && kill -0 "$fuser" 2>/dev/null; then fusermount3 -u "$fuse" || kill "$fuser"; fi
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM "$server"; wait "$server" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$fuse" "$mnt"

"$reel" init >/dev/null
"$reel" key create --out "$work/master.key" --label "drill" >/dev/null
"$reel" volume create fs --size 64M >/dev/null
"$reel" serve fs --socket "$socket" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
nbdfuse "$fuse" "nbd+unix:///fs?socket=$socket" &
fuser=$!
for _ in $(seq 100); do [ -e "$fuse/nbd" ] && break; sleep 0.1; done
mkfs.ext4 -q -F "$fuse/nbd"

declare -A sums rows
sources=(/usr/share/common-licenses/*)
for round in 1 2 3; do
  mount -o loop "$fuse/nbd" "$mnt"
  mkdir -p "$mnt/files"
  [ "$round" = 1 ] && sqlite3 "$mnt/app.db" "CREATE TABLE item (id INTEGER PRIMARY KEY, round INTEGER, note TEXT)"
  for batch in $(seq 20); do
    sqlite3 "$mnt/app.db" "BEGIN; $(for i in $(seq 10); do echo "INSERT INTO item (round, note) VALUES ($round, 'r$round b$batch i$i');"; done) UPDATE item SET note = note || '+' WHERE id % 7 = $((batch % 7)); COMMIT;"
  done
  head -c 3145728 /dev/urandom >"$mnt/files/r$round-blob.bin"
  for file in "${sources[@]:$(((round - 1) * 4)):4}"; do [ -f "$file" ] && cp "$file" "$mnt/files/r$round-$(basename "$file")"; done
  if [ "$round" -gt 1 ]; then
    rm -f "$(ls -d "$mnt"/files/* | head -1)"
    echo "edited in round $round" >>"$(ls -d "$mnt"/files/* | head -1)"
  fi
  rows[round-$round]=$(sqlite3 "$mnt/app.db" "SELECT COUNT(*) FROM item")
  (cd "$mnt/files" && sha256sum -- * >"$work/files-round-$round.sha256")
  sync
  umount "$mnt"
  sync
  sums[round-$round]=$(sha256sum <"$fuse/nbd" | cut -d' ' -f1)
  "$reel" bookmark fs "round-$round"
  if [ "$round" = 2 ]; then
    instant=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
    sums[$instant]=${sums[round-2]}
    rows[$instant]=${rows[round-2]}
    cp "$work/files-round-2.sha256" "$work/files-$instant.sha256"
  fi
  [ "$round" != 2 ] && "$reel" seal fs --out "$work/sealed"
done
fusermount3 -u "$fuse"
wait "$fuser" || true
fuser=""
kill -TERM "$server"
wait "$server"
server=""

echo "== export to a vtape media set of small cartridges"
largest=$(stat -c %s "$work"/sealed/*.reel.tar | sort -n | tail -1)
mkdir -p "$work/vtl"
for n in 1 2 3; do
  "$reel" media label "vtape:$work/vtl" --name "DRILL0$n" --media-set drill --capacity $((largest + (3 << 20))) >/dev/null
done
"$reel" export "$work"/sealed/*.reel.tar --to "vtape:$work/vtl" --media-set drill

echo "== disaster: the store and the key file are gone; the paper copy is typed back in"
"$reel" key paper "$work/master.key" >"$work/paper.txt"
rm -rf "$REEL_STORE" "$work/master.key" "$work/sealed"
"$reel" key create --out "$work/typed.key" --from-paper --paper-file "$work/paper.txt" >/dev/null
unset REEL_STORE REEL_KEY

echo "== rehydrate from the cartridges"
"$reel" rehydrate --from "vtape:$work/vtl" --key "$work/typed.key" --store "$work/recovered"

echo "== restore every point and compare"
status=0
printf "%-40s %-10s %-8s %s\n" POINT IMAGE FILES "DB ROWS"
for point in "${!sums[@]}"; do
  "$reel" restore fs --store "$work/recovered" --at "$point" --output "$work/restored.img" --force >/dev/null
  image=DIFFERENT files=DIFFERENT db=DIFFERENT
  [ "$(sha256sum <"$work/restored.img" | cut -d' ' -f1)" = "${sums[$point]}" ] && image=identical
  mount -o ro,loop,noload "$work/restored.img" "$mnt"
  (cd "$mnt/files" && sha256sum --quiet -c "$work/files-$point.sha256" >/dev/null 2>&1) && files=identical
  got=$(sqlite3 "file:$mnt/app.db?immutable=1" "SELECT COUNT(*) FROM item")
  [ "$got" = "${rows[$point]}" ] && db="$got"
  umount "$mnt"
  printf "%-40s %-10s %-8s %s\n" "$point" "$image" "$files" "$db"
  [ "$image/$files/$db" = "identical/identical/${rows[$point]}" ] || status=1
done
[ "$status" = 0 ] && echo "drill passed: every point restored bit for bit from cartridges and a paper key" || echo "DRILL FAILED"
exit "$status"
