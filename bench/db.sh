#!/usr/bin/env bash
# bench/db.sh - authorizations per second of the decision engine in
# PostgreSQL, against its own throwaway cluster with durable commits
# (fsync and synchronous_commit on).  Prints a table; never fails on speed.
#
#   data: 100,000 cards over 10,000 company wallets (uniform), and 1,000
#         cards on ONE wallet (the hot company wallet); every company has a
#         policy (per-transaction and daily limits, a blocked MCC group) so
#         the policy path does its real work; wallets hold enough that no
#         request is declined for funds.
#   shapes: one request per call (authorize_batch with one element, one
#         transaction each) at 1/4/16/64 clients; authorize_batch with 16,
#         64 and 256 requests per call at 1 and 4 clients.
#
# Environment: BENCH_SECONDS (per run, default 10), BENCH_RUNS (runs per
# cell, median printed, default 1), CARDGATE_BUILD (default build).
# Requests are built inside the server from random card numbers (sha256 of
# the card number is the "PAN hash"); that costs a few µs per request and is
# included in the figures.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
# shellcheck source=lib/db.bash
. bench/lib/db.bash
export CARDGATE_BUILD=${CARDGATE_BUILD:-build}
secs=${BENCH_SECONDS:-10}
runs=${BENCH_RUNS:-1}
command -v pgbench >/dev/null || { echo "bench/db.sh: pgbench not found (postgresql-client)"; exit 1; }

dir=$(mktemp -d /tmp/cardgate-benchdb.XXXXXX)
work=$(mktemp -d /tmp/cardgate-benchdb-scripts.XXXXXX)
cleanup() { tests/pgtmp stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
tests/pgtmp start "$dir" --durable >/dev/null
set -a; . "$dir/env"; set +a

bench_db_seed

for n in 1 16 64 256; do
    script "uniform_$n" 1 100000 "$n"
    script "hot_$n" 100001 101000 "$n"
done

# the floor every durable transaction stands on here: one tiny commit at a time
psql -qX -c 'CREATE TABLE bench_commit (x int)' >/dev/null
echo 'INSERT INTO bench_commit VALUES (1);' > "$work/commit.sql"
commits=$(pgbench -n -f "$work/commit.sql" -c 1 -T 3 2>/dev/null | sed -n 's/^tps = \([0-9]*\).*/\1/p')

echo "decision engine in PostgreSQL $(psql -XAtc 'SHOW server_version'), durable commits"
echo "(synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), fsync=$(psql -XAtc 'SHOW fsync')), ${secs}s per run, median of ${runs}, $(nproc) cores"
echo "100,000 cards over 10,000 wallets (uniform); 1,000 cards on one wallet (hot)"
echo "durable commit floor: ${commits:-?} single-row commits/s on 1 client; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-34s %8s %14s %14s %8s\n' "shape" "clients" "uniform auth/s" "hot auth/s" "hot/uni"
row() { # label n clients
    local u h
    u=$(measure uniform "$2" "$3")
    h=$(measure hot "$2" "$3")
    printf '%-34s %8s %14s %14s %7s%%\n' "$1" "$3" "$u" "$h" \
        "$(awk -v u="$u" -v h="$h" 'BEGIN { printf "%d", (u > 0 ? 100 * h / u : 0) }')"
}
for c in 1 4 16 64; do row "one request per call" 1 "$c"; done
for n in 16 64 256; do
    for c in 1 4; do row "authorize_batch, $n per call" "$n" "$c"; done
done
echo
echo "ledger check after the runs: $("$CARDGATE_BUILD/cardgatectl" check-ledger 2>&1 | tail -n 1)"
