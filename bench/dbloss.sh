#!/usr/bin/env bash
# bench/dbloss.sh - what a switch sees when the database goes away (issue 6):
# a devstack of its own (throwaway PostgreSQL, demo data, cardgated with a
# 1 s budget) under cardgate-sim load at BENCH_DBLOSS_RATE requests/s, open
# loop, for BENCH_DBLOSS_SECONDS per row:
#   up        the database serving: the baseline
#   killed    `pg_ctl stop -m immediate` a third into the run: requests in
#             flight and after are answered from stand-in (91) at once, not at
#             their deadline; errors/timeouts must stay 0
#   down      the database stopped for the whole run: every answer stand-in
#   recovery  `pg_ctl start`, then the time until a pool connection is up
#             again (reconnect back-off; the daemon is not restarted) and a
#             run that gets approvals again
# Latencies are from the scheduled send time (cardgate-sim load), so the
# killed row's max shows whether any request waited for its deadline.  Prints
# one table and writes $CARDGATE_BUILD/bench/dbloss.json.  Never fails on
# speed; fails when a step cannot run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
B=${CARDGATE_BUILD:-build}
export CARDGATE_BUILD=$B
rate=${BENCH_DBLOSS_RATE:-1000}
secs=${BENCH_DBLOSS_SECONDS:-6}
stack=$B/bench/dbloss-stack
out=$B/bench/dbloss.json
mkdir -p "$B/bench"
[ -x "$B/cardgated" ] && [ -x "$B/cardgate-sim" ] || { echo "bench/dbloss.sh: build first: make"; exit 1; }

cleanup() { DEVSTACK_DIR=$stack scripts/devstack down >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
cleanup
DEVSTACK_DIR=$stack scripts/devstack up >/dev/null
set -a; . "$stack/env"; set +a

# pg_ctl on the stack's cluster, as its owner (pgtmp runs it as postgres when root)
pgctl() {
    local home=$stack/pg
    [ -f "$home/.pgtmp-home" ] && home=$(cat "$home/.pgtmp-home")
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$home/data" -l "$home/postgresql.log" \
        -w -t 30 "$@" >/dev/null
}

# load NAME: one open-loop run into $stack/NAME.json
load() {
    "$B/cardgate-sim" load --addr "$CARDGATE_ADDR" --dialect "$CARDGATE_DIALECT" \
        --framing "$CARDGATE_FRAMING" --cards "$CARDGATE_CARDS" --conns 2 --rate "$rate" \
        --duration "$secs" --timeout 5 --mix purchase=100 --amount 1 --json > "$stack/$1.json"
}

# seconds until the daemon reports a usable pool connection (metrics), or -1
wait_pool() {
    python3 - "$CARDGATE_METRICS" <<'PY'
import sys, time, urllib.request
t0 = time.monotonic()
while time.monotonic() - t0 < 30:
    try:
        body = urllib.request.urlopen('http://%s/metrics' % sys.argv[1], timeout=1).read().decode()
        for line in body.splitlines():
            if line.startswith('cardgate_db_connections_up ') and int(line.split()[-1]) > 0:
                print('%.3f' % (time.monotonic() - t0)); sys.exit(0)
    except OSError:
        pass
    time.sleep(0.01)
print(-1)
PY
}

load up
load killed &
lp=$!
sleep "$(python3 -c "print($secs / 3)")"
pgctl -m immediate stop
wait "$lp"
load down
pgctl start
reconnect=$(wait_pool)
load recovery

python3 - "$stack" "$out" "$rate" "$secs" "$reconnect" <<'PY'
import json, sys
stack, out, rate, secs, reconnect = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
rows = {}
for name in ('up', 'killed', 'down', 'recovery'):
    rows[name] = json.load(open('%s/%s.json' % (stack, name)))
res = {'offered_rate': rate, 'duration_s': secs, 'reconnect_s': reconnect, 'runs': rows}
json.dump(res, open(out, 'w'), indent=1)
print('offered %d/s open loop, %d s a row, devstack cardgated (budget 1 s), 2 connections' % (rate, secs))
print('%-9s %8s %7s %7s %9s  %-28s %8s %8s %9s %8s' % ('row', 'sent', 'errors', 'timeouts', 'answered',
      'codes', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms'))
for name, r in rows.items():
    codes = ' '.join('%s:%d' % (k, v) for k, v in sorted(r['by_code'].items(), key=lambda kv: -kv[1])[:4])
    l = r['latency_us']
    print('%-9s %8d %7d %7d %9d  %-28s %8.2f %8.2f %9.2f %8.2f' % (name, r['sent'], r['errors'],
          r['timeouts'], r['answered'], codes, l['p50'] / 1e3, l['p99'] / 1e3, l['p999'] / 1e3, l['max'] / 1e3))
print('database started again: a pool connection up %s s later (reconnect back-off, no daemon restart)'
      % ('%.3f' % reconnect if reconnect >= 0 else 'never (30 s)'))
PY
