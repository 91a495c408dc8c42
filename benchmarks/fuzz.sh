#!/usr/bin/env bash
# Fuzzing that stays: every reel-fuzz target (tar headers, manifests, labels, on-media
# catalogs, vtape cartridges, pipeline files, PARITY members, parity maps, the NBD
# handshake and requests, S3 replies) for SECONDS
# each (default 60) from a fixed seed, release build. A target passes when none of its
# inputs crashed, hung (10 s per input) or allocated past 4 GiB; crashing inputs are
# minimized into .bench-work/fuzz-*/crashes for a regression test (Tests/ReelFuzzTests).
#   RESULT fuzz reel=<inputs/s over all targets> baseline=n/a ratio=<crash-free targets / targets> target=1.00
# Usage: benchmarks/fuzz.sh [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
seed=${2:-19}
work=$PWD/.bench-work/fuzz-$$
mkdir -p "$work"
# reel-fuzz seeds its inputs with ReelTestSupport, which imports ReelStore @testable.
flags=(-c release -Xswiftc -enable-testing)
swift build "${flags[@]}" --product reel-fuzz >/dev/null
swift build "${flags[@]}" --product reel >/dev/null
bin=$(swift build "${flags[@]}" --show-bin-path)
status=0
"$bin/reel-fuzz" run --work "$work" --seed "$seed" --seconds "$seconds" --crashes "$work/crashes" || status=$?
if [ -d "$work/crashes" ]; then
  echo "crashing inputs kept in $work/crashes"
else
  rm -rf "$work"
fi
exit "$status"
