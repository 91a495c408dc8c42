#!/usr/bin/env bash
# Runs Reel's whole test suite (installs missing Debian packages first).
# Tests that mount file systems or use loop devices need root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
swift build --build-tests
swift test --skip-build "$@"
