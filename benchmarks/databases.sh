#!/usr/bin/env bash
# Databases at any instant (docs/databases.md), in one run:
#  1. benchmarks/databases-sqlite.sh: `reel sql` SELECT count(*) on a 1 GiB SQLite database
#     at an instant vs restore + sqlite3.                          target ratio ≥ 10
#  2. benchmarks/databases-pg.sh: `reel pg -- -t one_table` on a 1 GiB cluster vs restore +
#     mount + start + pg_dump.                                      target ratio ≥ 2
#  3. benchmarks/databases-bisect.sh: `reel bisect` over 100,000 records.
#                                                                   target ≤ 20 evaluations
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/databases-sqlite.sh
bash benchmarks/databases-pg.sh
bash benchmarks/databases-bisect.sh
