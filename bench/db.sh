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
# cell, median printed, default 1), CARDGATE_BUILD (default build),
# BENCH_BATCH_ONLY=1 (skip the one-request-per-call rows).
# BENCH_OLD=sql/NNNN_x.sql compares IN THE SAME RUN: that file's
# authorize_batch is installed as authorize_batch_old, every cell is measured
# for both (runs interleaved, old first), and the table gets new/old ratios
# plus the backend CPU per authorization (utime+stime of the server process
# over BENCH_CPU_BATCHES calls on one connection, 4x as many for one request
# per call, median of the runs): on a shared machine the CPU figure is
# steadier than throughput.
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
old=${BENCH_OLD:-}
cpu_batches=${BENCH_CPU_BATCHES:-100}
[ -z "$old" ] || [ -f "$old" ] || { echo "bench/db.sh: BENCH_OLD=$old: no such file"; exit 1; }
command -v pgbench >/dev/null || { echo "bench/db.sh: pgbench not found (postgresql-client)"; exit 1; }

dir=$(mktemp -d /tmp/cardgate-benchdb.XXXXXX)
work=$(mktemp -d /tmp/cardgate-benchdb-scripts.XXXXXX)
cleanup() { tests/pgtmp stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
tests/pgtmp start "$dir" --durable >/dev/null
set -a; . "$dir/env"; set +a

bench_db_seed
if [ -n "$old" ]; then
    # the old file's authorize_batch, renamed (its other objects are not touched)
    awk '/^CREATE (OR REPLACE )?FUNCTION authorize_batch\(/ { on = 1 } on { print } on && /^END \$\$;/ { exit }' "$old" |
        sed '1s/FUNCTION authorize_batch(/FUNCTION authorize_batch_old(/' > "$work/old.sql"
    grep -q authorize_batch_old "$work/old.sql" || { echo "bench/db.sh: no authorize_batch in $old"; exit 1; }
    psql -qX -v ON_ERROR_STOP=1 -f "$work/old.sql" >/dev/null
fi

for n in 1 16 64 256; do
    script "uniform_$n" 1 100000 "$n"
    script "hot_$n" 100001 101000 "$n"
    if [ -n "$old" ]; then
        script "olduniform_$n" 1 100000 "$n" authorize_batch_old
        script "oldhot_$n" 100001 101000 "$n" authorize_batch_old
    fi
done

# backend CPU µs per authorization: cpu_batches calls of the set's script
# on one connection (each its own transaction), utime+stime of the server
# process from /proc (the bench role is a superuser of its own cluster)
cpu_once() { # set n
    local i calls=$cpu_batches
    [ "$2" -gt 1 ] || calls=$((cpu_batches * 4))   # clock ticks: enough of them
    {
        echo "SELECT split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint"
        echo "     + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint AS c0 \\gset"
        for ((i = 0; i < calls; i++)); do sed 's/:client_id/0/g' "$work/${1}_$2.sql"; done
        echo "SELECT round((split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint"
        echo "     + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint - :c0)"
        echo "     * (1e6 / $(getconf CLK_TCK)) / ($2 * $calls))"
    } | psql -qXAt -v ON_ERROR_STOP=1 | tail -n 1
}

# the floor every durable transaction stands on here: one tiny commit at a time
psql -qX -c 'CREATE TABLE bench_commit (x int)' >/dev/null
echo 'INSERT INTO bench_commit VALUES (1);' > "$work/commit.sql"
commits=$(pgbench -n -f "$work/commit.sql" -c 1 -T 3 2>/dev/null | sed -n 's/^tps = \([0-9]*\).*/\1/p')

echo "decision engine in PostgreSQL $(psql -XAtc 'SHOW server_version'), durable commits"
echo "(synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), fsync=$(psql -XAtc 'SHOW fsync')), ${secs}s per run, median of ${runs}, $(nproc) cores"
echo "100,000 cards over 10,000 wallets (uniform); 1,000 cards on one wallet (hot)"
echo "durable commit floor: ${commits:-?} single-row commits/s on 1 client; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b > 0 ? 100 * a / b : 0) }'; }
if [ -z "$old" ]; then
    printf '%-34s %8s %14s %14s %8s\n' "shape" "clients" "uniform auth/s" "hot auth/s" "hot/uni"
else
    echo "new = authorize_batch (sql/ as migrated), old = authorize_batch of $old; runs interleaved"
    printf '%-30s %7s %10s %10s %7s %10s %10s %7s %8s\n' "shape" "clients" "uni new" "uni old" \
        "new/old" "hot new" "hot old" "new/old" "hot/uni"
fi
row() { # label n clients
    local u h uo ho i a b c d
    if [ -z "$old" ]; then
        u=$(measure uniform "$2" "$3")
        h=$(measure hot "$2" "$3")
        printf '%-34s %8s %14s %14s %7s%%\n' "$1" "$3" "$u" "$h" "$(pct "$h" "$u")"
        return
    fi
    : > "$work/r"
    for ((i = 0; i < runs; i++)); do
        a=$(once olduniform "$2" "$3"); b=$(once uniform "$2" "$3")
        c=$(once oldhot "$2" "$3"); d=$(once hot "$2" "$3")
        echo "$a $b $c $d" >> "$work/r"
    done
    uo=$(awk '{ print $1 }' "$work/r" | median); u=$(awk '{ print $2 }' "$work/r" | median)
    ho=$(awk '{ print $3 }' "$work/r" | median); h=$(awk '{ print $4 }' "$work/r" | median)
    printf '%-30s %7s %10s %10s %6s%% %10s %10s %6s%% %7s%%\n' "$1" "$3" "$u" "$uo" "$(pct "$u" "$uo")" \
        "$h" "$ho" "$(pct "$h" "$ho")" "$(pct "$h" "$u")"
}
cpurow() { # n
    local i a b c d uo u ho h
    : > "$work/r"
    for ((i = 0; i < runs; i++)); do
        a=$(cpu_once olduniform "$1"); b=$(cpu_once uniform "$1")
        c=$(cpu_once oldhot "$1"); d=$(cpu_once hot "$1")
        echo "$a $b $c $d" >> "$work/r"
    done
    uo=$(awk '{ print $1 }' "$work/r" | median); u=$(awk '{ print $2 }' "$work/r" | median)
    ho=$(awk '{ print $3 }' "$work/r" | median); h=$(awk '{ print $4 }' "$work/r" | median)
    printf '%-30s %7s %10s %10s %6s%% %10s %10s %6s%%\n' "CPU us/auth, $1 per call" 1 "$u" "$uo" \
        "$(pct "$u" "$uo")" "$h" "$ho" "$(pct "$h" "$ho")"
}
if [ -z "${BENCH_BATCH_ONLY:-}" ]; then
    for c in 1 4 16 64; do row "one request per call" 1 "$c"; done
fi
for n in 16 64 256; do
    for c in 1 4; do row "authorize_batch, $n per call" "$n" "$c"; done
done
if [ -n "$old" ]; then
    echo
    [ -n "${BENCH_BATCH_ONLY:-}" ] || cpurow 1
    for n in 16 64 256; do cpurow "$n"; done
fi
echo
echo "ledger check after the runs: $("$CARDGATE_BUILD/cardgatectl" check-ledger 2>&1 | tail -n 1)"
