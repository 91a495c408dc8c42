#!/usr/bin/env bash
# Files at any instant (docs/files.md), all in one run on the same disk:
#  1. get: `reel files get` of a ~200 MiB tree at an instant, against `cp -a` of the same
#     tree from a kernel mount of the image restored at that instant (page cache dropped
#     before each; the baseline's restore is not counted).          target ratio ≥ 0.8
#     Each side writes into an ext4 of its own, made just before the round, so both start
#     from the same file-system state (see "Where files-get's time goes" in docs/files.md:
#     on an ext4 without a journal, as this repository's disk may be, every new inode is
#     found by skipping the inodes freed in the last minutes one by one, so whoever wrote
#     after the most recent `rm -rf` — ours or another program's — paid up to 0.3 s more).
#     The rounds alternate which side goes first.
#  2. first byte: `reel files cat` of one 4 KiB file at an instant in the middle of a long
#     history of a SIZE volume (printed beside `reel restore` of the whole volume).
#                                                                    target ≤ 0.2 s
#  3. mount: `find DIR/NAME/at/T -type f | wc -l` over 50,000 files through `reel mount`,
#     against the same `find` on a kernel mount of the restored image; peak RSS of
#     `reel mount`.                                        target ≤ 2× (ratio ≥ 0.5), ≤ 300 MiB
# Usage: benchmarks/files.sh [SIZE]   (the volume, default 4G)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-4G}
work=$PWD/.bench-work/files-$$
mkdir -p "$work"
# The source tree is built in memory: deleting its ~51,000 inodes from the disk the
# outputs go to would slow whichever allocates inodes there next (see get below).
src=$(mktemp -d /dev/shm/reel-files-bench.XXXXXX)
server_pid= fuse_pid= mount_pid=
cleanup() {
  set +e
  for point in "$work/mnt" "$work/reelmnt" "$work/out-reel" "$work/out-cp"; do mountpoint -q "$point" && umount "$point" 2>/dev/null; done
  if [ -n "$mount_pid" ]; then fusermount3 -u -z "$work/reelmnt" 2>/dev/null; kill "$mount_pid" 2>/dev/null; wait "$mount_pid" 2>/dev/null; fi
  if [ -n "$fuse_pid" ]; then fusermount3 -u -z "$work/nbd" 2>/dev/null; wait "$fuse_pid" 2>/dev/null; fi
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work" "$src"
}
trap cleanup EXIT

source benchmarks/lib.sh

echo "== a $size ext4 volume: a ~200 MiB tree of real files and 50,000 small ones"
mkdir -p "$src/tree" "$src/many" "$work/mnt" "$work/nbd" "$work/reelmnt" "$work/out-reel" "$work/out-cp"
# Real files, about 200 MiB of them.
tar -C /usr/lib/x86_64-linux-gnu -cf - . 2>/dev/null | head -c 210000000 | tar -C "$src/tree" -xf - 2>/dev/null || true
tree_bytes=$(du -sb "$src/tree" | cut -f1)
for d in $(seq 0 99); do
  mkdir -p "$src/many/d$d"
  (cd "$src/many/d$d" && for f in $(seq 0 499); do echo "file $d/$f" >"f$f"; done)
done
mkfs.ext4 -q -F -b 4096 -d "$src" "$work/fs.img" "$size"
rm -rf "$src"

export REEL_STORE=$work/store
"$reel" init >/dev/null
"$reel" volume create data --size "$size" --from "$work/fs.img" >/dev/null
rm -f "$work/fs.img"

echo "== a long history: the kernel writes 3,000 small files through reel serve, each synced"
"$reel" serve data --socket "$work/nbd.sock" >"$work/serve.log" 2>&1 &
server_pid=$!
until grep -q "Listening on" "$work/serve.log"; do sleep 0.2; done
nbdfuse "$work/nbd" "nbd+unix:///data?socket=$work/nbd.sock" &
fuse_pid=$!
until [ -e "$work/nbd/nbd" ]; do sleep 0.2; done
mount -o loop "$work/nbd/nbd" "$work/mnt"
mkdir -p "$work/mnt/history"
for i in $(seq 1 3000); do
  head -c 4096 /dev/urandom >"$work/mnt/history/h$i"
  if [ "$i" = 1500 ]; then
    sync -f "$work/mnt/history/h$i"
    middle=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
    head -c 4096 /dev/urandom >"$work/mnt/history/probe"
  fi
  sync -f "$work/mnt/history/h$i"
done
umount "$work/mnt"
"$reel" bookmark data end >/dev/null
fusermount3 -u "$work/nbd"; wait "$fuse_pid"; fuse_pid=
kill "$server_pid"; wait "$server_pid" || true; server_pid=
"$reel" ingest data >/dev/null
records=$("$reel" timeline data --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
echo "history: $records journal records; middle instant $middle"

echo "== 1. get of $tree_bytes bytes at 'end' vs cp -a from a kernel mount of the restored image"
start=$(now)
"$reel" restore data --at end --output "$work/restored.img" >/dev/null
sync
end=$(now)
restore_seconds=$(seconds "$start" "$end")
mount -o ro,loop "$work/restored.img" "$work/mnt"
# fresh_output SIDE: a new, empty ext4 (with a journal, as mkfs makes it; inode tables
# written now, not by a background thread during the timing) mounted at $work/out-SIDE.
fresh_output() {
  mountpoint -q "$work/out-$1" && umount "$work/out-$1"
  rm -f "$work/out-$1.img"
  mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$work/out-$1.img" 1G >/dev/null
  mount -o loop "$work/out-$1.img" "$work/out-$1"
}
time_reel_get() {
  drop_caches
  start=$(now)
  "$reel" files get data --at end /tree --to "$work/out-reel/got" >/dev/null
  sync
  end=$(now)
  reel_best=$(fastest "$reel_best" "$(seconds "$start" "$end")")
}
time_cp() {
  drop_caches
  start=$(now)
  cp -a "$work/mnt/tree" "$work/out-cp/copied"
  sync
  end=$(now)
  cp_best=$(fastest "$cp_best" "$(seconds "$start" "$end")")
}
reel_best= cp_best=
for round in $(seq 1 "$rounds"); do
  fresh_output reel
  fresh_output cp
  if [ $((round % 2)) = 1 ]; then time_reel_get; time_cp; else time_cp; time_reel_get; fi
done
diff -rq --no-dereference "$work/out-cp/copied" "$work/out-reel/got/tree" >"$work/get.diff" || { echo "files.sh: files get and cp -a differ:" >&2; head -5 "$work/get.diff" >&2; exit 1; }
umount "$work/out-reel" "$work/out-cp"
rm -f "$work/out-reel.img" "$work/out-cp.img"
echo "get: reel ${reel_best}s, cp -a ${cp_best}s (restore first: ${restore_seconds}s)"

echo "== 2. first byte of one file at an instant in the middle of the history"
drop_caches
start=$(now)
"$reel" files cat data --at "$middle" /history/h1500 | head -c 1 >/dev/null
end=$(now)
first_byte=$(seconds "$start" "$end")
echo "first byte: ${first_byte}s; reel restore of the whole volume: ${restore_seconds}s"

echo "== 3. find over 50,000 files: reel mount vs the kernel"
drop_caches
start=$(now)
kernel_count=$(find "$work/mnt/many" -type f | wc -l)
end=$(now)
kernel_find=$(seconds "$start" "$end")
umount "$work/mnt"
"$reel" mount data "$work/reelmnt" >"$work/mount.log" 2>&1 &
mount_pid=$!
until mountpoint -q "$work/reelmnt"; do sleep 0.2; done
point_dir=$work/reelmnt/data/bookmarks/end
[ -d "$point_dir/files" ] && point_dir=$point_dir/files
drop_caches
start=$(now)
reel_count=$(find "$point_dir/many" -type f | wc -l)
end=$(now)
reel_find=$(seconds "$start" "$end")
mount_rss_mib=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$mount_pid/status")
fusermount3 -u "$work/reelmnt"; wait "$mount_pid" || true; mount_pid=
echo "find: reel mount ${reel_find}s ($reel_count files), kernel ${kernel_find}s ($kernel_count files); reel mount peak RSS ${mount_rss_mib} MiB"

awk -v r="$reel_best" -v c="$cp_best" \
  'BEGIN { printf "RESULT files-get reel=%.2fs baseline=%.2fs ratio=%.2f target=0.8\n", r, c, c / r }'
awk -v f="$first_byte" \
  'BEGIN { printf "RESULT files-first-byte reel=%.3fs baseline=0.2s ratio=%.2f target=1.0\n", f, 0.2 / f }'
awk -v r="$reel_find" -v k="$kernel_find" -v m="$mount_rss_mib" \
  'BEGIN { printf "RESULT files-mount-find reel=%.2fs baseline=%.2fs ratio=%.2f target=0.5 rss=%dMiB\n", r, k, k / r, m }'
