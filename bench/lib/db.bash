# bench/lib/db.bash - the decision engine's database benchmark pieces, shared
# by bench/db.sh (the full grid) and bench/e2e.sh (the ceilings it compares
# the daemon against).  Source it; it defines functions only.
#
#   bench_db_seed            companies, wallets, policies and cards as
#                            bench/db.sh describes (PG* environment)
#   script NAME LO HI N [FN] writes $work/NAME.sql: FN (authorize_batch) of N
#                            random cards LO..HI per call
#   once SET N CLIENTS       authorizations/s of one pgbench run
#   measure SET N CLIENTS    median authorizations/s of $runs pgbench runs of
#                            $work/SET_N.sql, $secs seconds each
# Callers set $work, $secs and $runs.

# 100,000 cards over 10,000 wallets (ids 1..100000, wallets 1..10000) and
# 1,000 cards (ids 100001..101000) on wallet 10001, pan_hash = sha256(id).
bench_db_seed() {
    psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
INSERT INTO mcc_groups VALUES ('gambling', '7995'), ('gambling', '7800');
INSERT INTO companies (id, name, timezone)
  SELECT i, 'bench ' || i, 'Europe/Berlin' FROM generate_series(1, 10001) i;
INSERT INTO accounts (id, company_id, name, currency)
  SELECT i, i, 'wallet ' || i, 'EUR' FROM generate_series(1, 10001) i;
INSERT INTO cardholders (id, company_id, name)
  SELECT i, 1 + (i - 1) % 10000, 'holder ' || i FROM generate_series(1, 100000) i;
-- uniform: cards 1..100000 over wallets 1..10000; hot: cards 100001..101000 on wallet 10001
INSERT INTO cards (id, account_id, cardholder_id, pan_hash, bin, last4, expiry)
  SELECT i, CASE WHEN i <= 100000 THEN 1 + (i - 1) % 10000 ELSE 10001 END,
         CASE WHEN i <= 100000 THEN i END,
         encode(sha256(i::text::bytea), 'hex'), '999999', lpad((i % 10000)::text, 4, '0'), '3012'
    FROM generate_series(1, 101000) i;
SELECT setval('companies_id_seq', 20000), setval('accounts_id_seq', 20000),
       setval('cards_id_seq', 200000), setval('cardholders_id_seq', 200000);
INSERT INTO ledger_entries (journal_id, account_id, book, amount, memo)
  SELECT i, i, 'A', 1000000000000, 'bench load' FROM generate_series(1, 10001) i
  UNION ALL SELECT i, system_account('funding', 'EUR'), 'A', -1000000000000, 'bench load'
    FROM generate_series(1, 10001) i;
UPDATE accounts SET balance = 1000000000000, available = 1000000000000 WHERE kind = 'wallet';
SELECT setval('journal_id_seq', 20000);
SELECT policy_set('company', i, '{"per_txn_max": 100000000, "daily_max": 100000000000, "mcc_block": ["gambling"]}')
  FROM generate_series(1, 10001) i;
VACUUM ANALYZE;
SQL
}

# One pgbench script per (data set, requests per call).  lo/hi: the card range.
script() { # name lo hi n [function]
    cat > "$work/$1.sql" <<EOF
SELECT count(*) FROM ${5:-authorize_batch}(ARRAY(
  SELECT ROW('auth', '0100', encode(sha256((($2 + floor(random() * ($3 - $2 + 1)))::int)::text::bytea), 'hex'),
             NULL, 'BENCH', (:client_id * 1000000 + g)::text, (floor(random() * 1e12))::bigint::text,
             to_char(clock_timestamp(), 'MMDDHH24MISS') || (floor(random() * 1e6))::int::text, NULL,
             'TERM0001', 'MERCHANT0000001', 'Bench shop', '5411', 'DE', '978',
             100 + floor(random() * 5000)::int, NULL, NULL, 'chip', false, 'absent', 'absent',
             'absent', 'absent', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             clock_timestamp() + interval '10 seconds')::auth_request
    FROM generate_series(1, $4) g));
EOF
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# authorizations/s of one pgbench run
once() { # set n clients
    local tps
    tps=$(pgbench -n -f "$work/${1}_$2.sql" -c "$3" -j "$(( $3 < 2 ? 1 : 2 ))" \
              -T "$secs" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    awk -v t="${tps:-0}" -v n="$2" 'BEGIN { printf "%d", t * n }'
}

# median authorizations/s of `runs` pgbench runs
measure() { # set n clients
    local i
    for ((i = 0; i < runs; i++)); do once "$1" "$2" "$3"; echo; done | median
}

