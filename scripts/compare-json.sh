#!/usr/bin/env bash
# Compares every `--json` output (and the record-catalog stage's media list) of two reel
# binaries: read-only commands run by both on the same store and must match byte for byte;
# commands that change the store run on two copies of it, and only values the run itself
# makes (times, ids, hashes, durations, the copy's folder) are masked before the diff.
#   scripts/compare-json.sh OLD_REEL NEW_REEL
set -u
OLD=$(realpath "$1")
NEW=$(realpath "$2")
WORK=$(mktemp -d /tmp/reel-json-compare.XXXXXX)
export REEL_PASSPHRASE="correct horse" REEL_KDF_MEMORY_KIB=8192
FAILED=0
COMPARED=0
cd "$WORK"

setup() { "$OLD" "$@" --store "$WORK/s" >/dev/null || { echo "setup failed: $*" >&2; exit 2; }; }

# ---- a store with two volumes, writes, a bookmark, two sealed archives, media and a pipeline run
"$OLD" init --store "$WORK/s" >/dev/null
"$OLD" key create --out "$WORK/master.key" --label "compare/key" >/dev/null
export REEL_KEY="$WORK/master.key"
head -c $((3 << 20)) /dev/urandom >"$WORK/golden.img"
setup volume create vol1 --size 8M
setup volume create golden --from "$WORK/golden.img"
"$OLD" serve vol1 --store "$WORK/s" --socket "$WORK/nbd.sock" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 50); do [ -S "$WORK/nbd.sock" ] && break; sleep 0.2; done
qemu-io -f raw "nbd+unix:///vol1?socket=$WORK/nbd.sock" \
  -c "write -P 0xab 0 64k" -c "write -f -P 0xcd 1M 8k" -c "flush" -c "write -z 2M 256k" -c "flush" >/dev/null
kill -INT $SERVER
wait $SERVER
setup bookmark create vol1 "first/mark"
setup ingest
setup seal --out "$WORK/archives" --key "$REEL_KEY"
setup bookmark create vol1 second
setup seal vol1 --out "$WORK/archives" --key "$REEL_KEY"
mkdir -p "$WORK/vtl"
setup media label "vtape:$WORK/vtl" --name W1 --media-set weekly --capacity 64M
setup media label "vtape:$WORK/vtl" --name SCRATCH1
setup export "$WORK"/archives/*.reel.tar --to "vtape:$WORK/vtl" --media-set weekly
cat >"$WORK/nightly.yaml" <<YAML
pipeline: nightly
volumes: all
media-set: weekly
archive-dir: $WORK/archives
stages:
  - stage: cut
  - stage: seal
  - stage: export
    to:
      - vtape:$WORK/vtl
  - stage: record-catalog
    to: $WORK/catalog-copies
YAML
"$OLD" pipeline run "$WORK/nightly.yaml" --store "$WORK/s" >/dev/null 2>&1 || echo "(setup pipeline run exit $?)"
ARCHIVES=("$WORK"/archives/*.reel.tar)
setup media label "vtape:$WORK/vtl" --name SCRATCH2

# ---- read-only commands: the same store, both binaries, identical bytes
same() {
  local name=$1
  shift
  "$OLD" "$@" >"$WORK/old.out" 2>/dev/null
  local old_status=$?
  "$NEW" "$@" >"$WORK/new.out" 2>/dev/null
  local new_status=$?
  COMPARED=$((COMPARED + 1))
  if [ $old_status -ne $new_status ] || ! cmp -s "$WORK/old.out" "$WORK/new.out"; then
    FAILED=1
    echo "DIFFERS  $name (exit $old_status vs $new_status)"
    diff "$WORK/old.out" "$WORK/new.out" | head -20
  elif ! [ -s "$WORK/old.out" ]; then
    FAILED=1
    echo "EMPTY    $name (exit $old_status)"
  else
    echo "same     $name ($(wc -c <"$WORK/old.out") bytes, exit $old_status)"
  fi
}
S=(--store "$WORK/s")
same "volume list" volume list --json "${S[@]}"
same "bookmark list" bookmark list vol1 --json "${S[@]}"
same "timeline vol1" timeline vol1 --json "${S[@]}"
same "timeline golden" timeline golden --json "${S[@]}"
same "journal dump" journal dump vol1 --json "${S[@]}"
same "journal verify" journal verify vol1 --json "${S[@]}"
same "ingest (up to date)" ingest --json "${S[@]}"
same "store check" store check --json "${S[@]}"
same "store check --read-data" store check --read-data --json "${S[@]}"
same "store repair (nothing damaged)" store repair --json "${S[@]}"
same "key show" key show "$REEL_KEY" --json
same "inspect" inspect "${ARCHIVES[0]}" --json
same "verify (no key)" verify "${ARCHIVES[@]}" --json
same "verify (key)" verify "${ARCHIVES[@]}" --key "$REEL_KEY" --json
same "verify (missing parent)" verify "${ARCHIVES[-1]}" --key "$REEL_KEY" --json
echo "not an archive" >"$WORK/bogus.reel.tar"
same "verify (damaged file)" verify "$WORK/bogus.reel.tar" --json
same "media list" media list --json "${S[@]}"
same "media catalog (cartridge)" media catalog "vtape:$WORK/vtl/W1.vtape" --json "${S[@]}"
same "media catalog (library)" media catalog "vtape:$WORK/vtl" --json "${S[@]}"
same "media needed" media needed latest --volume vol1 --json "${S[@]}"
same "pipeline status" pipeline status --json "${S[@]}"
same "pipeline status (no runs)" pipeline status nosuch --json "${S[@]}"
same "seal (nothing to seal)" seal --out "$WORK/archives" --key "$REEL_KEY" --json "${S[@]}"
same "seal one volume (nothing to seal)" seal vol1 --out "$WORK/archives" --key "$REEL_KEY" --json "${S[@]}"

# ---- commands that change things: two copies, masked values made by the run
mask() {
  sed -E -e "s#$WORK/(a|b)#COPY#g" \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)/TIME/g' \
    -e 's/"(duration_seconds|time_ns|bytes)":[0-9.e+-]+/"\1":N/g' \
    -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/UUID/g' \
    -e 's/-[0-9a-f]{8}\.reel/-ID.reel/g' \
    -e 's/[0-9a-f]{16,}/HEX/g' \
    -e 's/[0-9A-Za-z]{26}/ULID/g'
}
changed() {
  local name=$1
  shift
  rm -rf "$WORK/a" "$WORK/b"
  mkdir "$WORK/a" "$WORK/b"
  cp -a "$WORK/s" "$WORK/vtl" "$WORK/archives" "$WORK/a/"
  cp -a "$WORK/s" "$WORK/vtl" "$WORK/archives" "$WORK/b/"
  sed "s#$WORK/#$WORK/a/#g" "$WORK/nightly.yaml" >"$WORK/a/nightly.yaml"
  sed "s#$WORK/#$WORK/b/#g" "$WORK/nightly.yaml" >"$WORK/b/nightly.yaml"
  # $PREP runs in each copy first (the same damage in both, say).
  if [ -n "${PREP:-}" ]; then (cd "$WORK/a" && eval "$PREP") && (cd "$WORK/b" && eval "$PREP"); fi
  (cd "$WORK/a" && "$OLD" "${@//@/$WORK/a}" >"$WORK/old.raw" 2>/dev/null)
  local old_status=$?
  (cd "$WORK/b" && "$NEW" "${@//@/$WORK/b}" >"$WORK/new.raw" 2>/dev/null)
  local new_status=$?
  mask <"$WORK/old.raw" >"$WORK/old.out"
  mask <"$WORK/new.raw" >"$WORK/new.out"
  COMPARED=$((COMPARED + 1))
  if [ $old_status -ne $new_status ] || ! cmp -s "$WORK/old.out" "$WORK/new.out"; then
    FAILED=1
    echo "DIFFERS  $name (masked; exit $old_status vs $new_status)"
    diff "$WORK/old.out" "$WORK/new.out" | head -20
  elif ! [ -s "$WORK/old.out" ]; then
    FAILED=1
    echo "EMPTY    $name (exit $old_status)"
  else
    echo "same     $name (masked, $(wc -c <"$WORK/old.raw") bytes, exit $old_status)"
  fi
}
# "@" in an argument stands for the copy's folder.
changed "pipeline run --dry-run" pipeline run @/nightly.yaml --dry-run --json --store @/s
# History not sealed yet, so the seals below seal.
setup bookmark create vol1 unsealed
changed "bookmark create" bookmark create vol1 third --json --store @/s
changed "restore" restore vol1 --at latest --output @/vol1.img --json --store @/s
changed "restore at a bookmark" restore vol1 --at first/mark --output @/vol1.img --json --store @/s
changed "prune" prune vol1 --keep-within 1d --json --store @/s
changed "seal (continues the chain)" seal vol1 --out @/archives --key "$REEL_KEY" --json --store @/s
changed "seal --new-chain (one volume)" seal vol1 --new-chain --out @/archives --key "$REEL_KEY" --json --store @/s
changed "seal --new-chain (all volumes)" seal --new-chain --out @/archives --key "$REEL_KEY" --json --store @/s
changed "export (already there)" export "${ARCHIVES[@]/$WORK/@}" --to vtape:@/vtl --media-set weekly --json --store @/s
changed "export (new set)" export "${ARCHIVES[@]/$WORK/@}" --to vtape:@/vtl --media-set monthly --json --store @/s
changed "rehydrate" rehydrate --from dir:@/archives --key "$REEL_KEY" --store @/r --json
changed "rehydrate (one archive, missing parent)" rehydrate --from "${ARCHIVES[-1]/$WORK/@}" --key "$REEL_KEY" --store @/r --json
changed "rehydrate from media" rehydrate --from vtape:@/vtl --key "$REEL_KEY" --store @/r --json
# A damaged pack: the same bytes overwritten in both copies.
DAMAGE='dd if=/dev/zero of="$(find s/packs -type f -size +64k | sort | head -1)" bs=1 seek=8192 count=64 conv=notrunc status=none'
PREP=$DAMAGE changed "store check (damaged)" store check --read-data --json --store @/s
PREP=$DAMAGE changed "store repair (no key)" store repair --json --store @/s
PREP=$DAMAGE changed "store repair (key)" store repair --key "$REEL_KEY" --json --store @/s
changed "pipeline run" pipeline run @/nightly.yaml --json --store @/s

# ---- the record-catalog stage's media list (a file on media): old and new stage, masked "written"
catalog_file() {
  local bin=$1 dir=$2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -a "$WORK/s" "$WORK/vtl" "$WORK/archives" "$dir/"
  sed "s#$WORK/#$dir/#g" "$WORK/nightly.yaml" >"$dir/nightly.yaml"
  "$bin" pipeline run "$dir/nightly.yaml" --store "$dir/s" --json >"$dir/run.json" 2>/dev/null
  ls "$dir"/catalog-copies/*.media.json | tail -1
}
OLD_LIST=$(catalog_file "$OLD" "$WORK/a")
NEW_LIST=$(catalog_file "$NEW" "$WORK/b")
COMPARED=$((COMPARED + 1))
if [ -z "$OLD_LIST" ] || [ -z "$NEW_LIST" ]; then
  FAILED=1
  echo "MISSING  record-catalog media list ($OLD_LIST / $NEW_LIST)"
elif cmp -s <(mask <"$OLD_LIST") <(mask <"$NEW_LIST"); then
  echo "same     record-catalog media list (masked, $(wc -c <"$OLD_LIST") bytes)"
else
  FAILED=1
  echo "DIFFERS  record-catalog media list"
  diff "$OLD_LIST" "$NEW_LIST" | head -20
fi

echo "compared $COMPARED outputs in $WORK"
[ $FAILED -eq 0 ] && [ -z "${KEEP:-}" ] && rm -rf "$WORK"
exit $FAILED
