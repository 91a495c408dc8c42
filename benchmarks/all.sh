#!/usr/bin/env bash
# Runs every benchmark (or the ones named), one after the other at its default size, and
# prints one table of their RESULT lines — name, Reel, baseline, ratio, target, met
# (ratio ≥ target; every ratio is > 1 when Reel is better) — then the RESULT lines
# themselves. A script that fails is listed as FAILED with its log; the others still run.
# Each script keeps working alone. Logs: .bench-work/all-<time>/<script>.log.
# Usage: benchmarks/all.sh [SCRIPT[:ARG]...]   (default: all at their default sizes;
#        e.g. `benchmarks/all.sh seal:256M store` passes 256M to seal.sh)
# Time it on a quiet machine: nothing else building or running.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts=()
if (($#)); then
  for asked in "$@"; do
    name=${asked%%:*}
    name=${name%.sh}
    if [ ! -f "benchmarks/$name.sh" ]; then
      echo "all.sh: no benchmark benchmarks/$name.sh (see ls benchmarks/*.sh)" >&2
      exit 64
    fi
    scripts+=("$name${asked#"${asked%%:*}"}")
  done
else
  for path in benchmarks/*.sh; do
    name=$(basename "$path" .sh)
    # lib.sh and servers.sh are sourced by the others; databases.sh only runs the three
    # databases-*.sh; small-writes-ab.sh compares two builds named on its command line.
    case $name in all | lib | servers | databases | small-writes-ab) continue ;; esac
    scripts+=("$name")
  done
fi

logs=.bench-work/all-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$logs"
results=$logs/results.txt
: >"$results"
failed=()
for script in "${scripts[@]}"; do
  name=${script%%:*}
  arguments=()
  if [ "$script" != "$name" ]; then arguments=("${script#*:}"); fi
  echo "== $name ${arguments[*]} ($(date -u +%H:%M:%S))"
  start=$(date +%s)
  if bash "benchmarks/$name.sh" "${arguments[@]}" >"$logs/$name.log" 2>&1; then
    status=0
  else
    status=$?
  fi
  grep '^RESULT ' "$logs/$name.log" | tee -a "$results"
  echo "   $(($(date +%s) - start)) s, exit $status, log $logs/$name.log"
  if [ "$status" != 0 ] || ! grep -q '^RESULT ' "$logs/$name.log"; then failed+=("$name (exit $status, log $logs/$name.log)"); fi
done

echo
awk '
  BEGIN { printf "%-28s %16s %16s %8s %8s %s\n", "name", "reel", "baseline", "ratio", "target", "met" }
  {
    reel = baseline = ratio = target = ""
    for (i = 3; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "reel") reel = kv[2]
      else if (kv[1] == "baseline") baseline = kv[2]
      else if (kv[1] == "ratio") ratio = kv[2]
      else if (kv[1] == "target") target = kv[2]
    }
    met = (ratio != "" && target != "" && ratio + 0 >= target + 0) ? "yes" : "NO"
    printf "%-28s %16s %16s %8s %8s %s\n", $2, reel, baseline, ratio, target, met
  }' "$results"
for failure in "${failed[@]}"; do printf "%-28s %s\n" "FAILED" "$failure"; done
echo
cat "$results"
((${#failed[@]} == 0))
