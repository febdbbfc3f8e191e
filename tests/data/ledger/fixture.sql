-- fixture.sql - the starting state of every ledger test (after a reset).
-- Cards are found by pan_hash; here a card's hash is one hex digit repeated
-- 64 times, and the decision files name cards by that digit ("pan_hash").
INSERT INTO mcc_groups (name, mcc) VALUES ('gambling', '7995'), ('gambling', '7800'),
    ('airlines', '4511'), ('airlines', '3000');
INSERT INTO companies (id, name, timezone) VALUES (1, 'Acme', 'UTC'), (2, 'Hot', 'Europe/Berlin'),
    (3, 'Dollar', 'America/New_York');
INSERT INTO accounts (id, company_id, name, currency) VALUES (1, 1, 'Acme wallet', 'EUR'),
    (2, 2, 'Hot wallet', 'EUR'), (3, 3, 'Dollar wallet', 'USD');
INSERT INTO teams (id, company_id, name) VALUES (1, 1, 'eng'), (2, 1, 'sales');
INSERT INTO cardholders (id, company_id, team_id, name) VALUES (1, 1, 1, 'Alice'), (2, 1, 2, 'Bob'),
    (3, 2, NULL, 'Hank'), (4, 3, NULL, 'Dora');
INSERT INTO cards (id, account_id, cardholder_id, pan_hash, bin, last4, expiry, status, last_atc) VALUES
    (1, 1, 1, repeat('a', 64), '999999', '0001', '3012', 'active', 10),
    (2, 1, 2, repeat('b', 64), '999999', '0002', '3012', 'frozen', NULL),
    (3, 1, 2, repeat('c', 64), '999999', '0003', '3012', 'blocked', NULL),
    (4, 1, 2, repeat('d', 64), '999999', '0004', '3012', 'lost', NULL),
    (5, 1, 2, repeat('e', 64), '999999', '0005', '3012', 'stolen', NULL),
    (6, 1, 2, repeat('f', 64), '999999', '0006', '3012', 'inactive', NULL),
    (7, 1, 2, repeat('0', 64), '999999', '0007', '3012', 'closed', NULL),
    (8, 1, 1, repeat('1', 64), '999999', '0008', '2001', 'active', NULL),
    (9, 2, 3, repeat('2', 64), '999999', '0009', '3012', 'active', NULL),
    (10, 3, 4, repeat('3', 64), '999999', '0010', '3012', 'active', NULL),
    (11, 1, 2, repeat('4', 64), '999999', '0011', '3012', 'active', NULL),
    (12, 2, 3, repeat('5', 64), '999999', '0012', '3012', 'active', NULL);
SELECT setval('cards_id_seq', 100), setval('companies_id_seq', 100), setval('accounts_id_seq', 100),
       setval('teams_id_seq', 100), setval('cardholders_id_seq', 100);
SELECT account_load(1, 100000);   -- 1000.00 EUR
SELECT account_load(2, 1000);     --   10.00 EUR
SELECT account_load(3, 50000);    --  500.00 USD
