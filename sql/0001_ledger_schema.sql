-- 0001_ledger_schema.sql - the issuer's ledger: companies, wallets, teams,
-- cardholders, cards, spending policies (versioned, with shadow mode),
-- authorizations (holds and every other message) and the double-entry ledger.
--
-- Money is bigint minor units of the account's currency.  PANs are never
-- stored: a card is found by the keyed hash (HMAC-SHA-256 hex) of its PAN.
--
-- Balances: an account has two books, 'A' (available) and 'H' (held by open
-- authorizations).  balance = A + H, available = A.  Every change to any book
-- is a pair of ledger entries that sums to zero (a journal); the other side
-- of loads, settlements and refunds is a per-currency system account
-- (kind 'funding' or 'settlement') whose balance columns are NOT maintained
-- (they would be one hot row for the whole issuer): their position is the
-- sum of their entries.

CREATE TABLE companies (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    timezone   text NOT NULL DEFAULT 'UTC' CHECK (now() AT TIME ZONE timezone IS NOT NULL),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id         bigserial PRIMARY KEY,
    company_id bigint REFERENCES companies (id),
    kind       text NOT NULL DEFAULT 'wallet' CHECK (kind IN ('wallet', 'funding', 'settlement')),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance    bigint NOT NULL DEFAULT 0,
    available  bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'wallet' OR company_id IS NULL)
) WITH (fillfactor = 50);
CREATE UNIQUE INDEX accounts_system_uq ON accounts (kind, currency) WHERE kind <> 'wallet';

CREATE TABLE teams (
    id         bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    UNIQUE (company_id, name)
);

CREATE TABLE cardholders (
    id         bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    team_id    bigint REFERENCES teams (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cards (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id),
    cardholder_id bigint REFERENCES cardholders (id),
    pan_hash      text NOT NULL UNIQUE CHECK (pan_hash ~ '^[0-9a-f]{64}$'),
    bin           text NOT NULL CHECK (bin ~ '^[0-9]{6,8}$'),
    last4         char(4) NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    expiry        char(4) NOT NULL CHECK (expiry ~ '^[0-9]{2}(0[1-9]|1[0-2])$'), -- YYMM
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('inactive', 'active', 'frozen', 'blocked', 'lost', 'stolen', 'closed')),
    form          text NOT NULL DEFAULT 'virtual' CHECK (form IN ('virtual', 'physical')),
    pvv           text CHECK (pvv ~ '^[0-9]{4}$'),
    pin_offset    text CHECK (pin_offset ~ '^[0-9]{4,12}$'),
    pin_tries     int NOT NULL DEFAULT 0 CHECK (pin_tries >= 0),
    pin_try_limit int NOT NULL DEFAULT 3 CHECK (pin_try_limit > 0),
    last_atc      int CHECK (last_atc BETWEEN 0 AND 65535),
    -- the daemon may approve up to this much per request in stand-in while the
    -- database is unreachable, and posts those later as 0120 stand-in advices
    standin_limit bigint NOT NULL DEFAULT 0 CHECK (standin_limit >= 0),
    created_at    timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
CREATE INDEX cards_account_idx ON cards (account_id);
CREATE INDEX cards_cardholder_idx ON cards (cardholder_id);

-- Named MCC groups a policy may use in its allow/block lists ("airlines").
CREATE TABLE mcc_groups (
    name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    mcc  char(4) NOT NULL CHECK (mcc ~ '^[0-9]{4}$'),
    PRIMARY KEY (name, mcc)
);

-- One row per policy version.  id is the version number (global, increasing).
-- state: 'active' (at most one per scope), 'shadow' (at most one per scope:
-- decided next to every live request, never changes an answer), 'retired'.
-- NULL means "no constraint at this level".  The tightest of the company,
-- team, cardholder and card levels applies: limits are the minimum, every
-- allow list must contain the value, no block list may contain it, every
-- channel switch must allow it.  Amount/count limits are per card, counted in
-- the company's time zone (calendar day, ISO week, calendar month, lifetime).
CREATE TABLE policies (
    id             bigserial PRIMARY KEY,
    scope          text NOT NULL CHECK (scope IN ('company', 'team', 'cardholder', 'card')),
    scope_id       bigint NOT NULL,
    state          text NOT NULL CHECK (state IN ('active', 'shadow', 'retired')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    note           text,
    per_txn_max    bigint CHECK (per_txn_max >= 0),
    daily_max      bigint CHECK (daily_max >= 0),
    weekly_max     bigint CHECK (weekly_max >= 0),
    monthly_max    bigint CHECK (monthly_max >= 0),
    lifetime_max   bigint CHECK (lifetime_max >= 0),
    daily_count    int CHECK (daily_count >= 0),
    weekly_count   int CHECK (weekly_count >= 0),
    monthly_count  int CHECK (monthly_count >= 0),
    lifetime_count int CHECK (lifetime_count >= 0),
    mcc_allow      text[],  -- expanded (groups resolved) MCCs
    mcc_block      text[],
    mcc_allow_spec text[],  -- as the operator wrote it (codes and group names)
    mcc_block_spec text[],
    country_allow  text[],  -- ISO 3166 alpha-2 or numeric, as the switch sends
    country_block  text[],
    currencies     text[],  -- allowed transaction currencies (alpha or numeric)
    allow_atm         boolean,
    allow_ecom        boolean,
    allow_contactless boolean,
    allow_fallback    boolean
);
CREATE UNIQUE INDEX policies_active_uq ON policies (scope, scope_id) WHERE state = 'active';
CREATE UNIQUE INDEX policies_shadow_uq ON policies (scope, scope_id) WHERE state = 'shadow';

-- Per-card period counters of approved spend (amount and count), one row per
-- card, updated on every approval (hence fillfactor 50 for HOT updates).
CREATE TABLE card_spend (
    card_id     bigint PRIMARY KEY REFERENCES cards (id),
    day         date NOT NULL,
    day_amt     bigint NOT NULL DEFAULT 0,
    day_cnt     int NOT NULL DEFAULT 0,
    week        date NOT NULL,
    week_amt    bigint NOT NULL DEFAULT 0,
    week_cnt    int NOT NULL DEFAULT 0,
    month       date NOT NULL,
    month_amt   bigint NOT NULL DEFAULT 0,
    month_cnt   int NOT NULL DEFAULT 0,
    life_amt    bigint NOT NULL DEFAULT 0,
    life_cnt    int NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

-- Every message the host decided or recorded: one row per request.  For a
-- hold (auth, cash, stand-in advice) hold_amount is what is still held.
-- The idempotency key is (acquirer_id, stan, xmit_at, rrn, key_kind):
-- key_kind folds repeats (0421 -> reversal, 0121 -> standin, 0221 -> completion).
CREATE TABLE authorizations (
    id               bigint PRIMARY KEY,
    kind             text NOT NULL,
    mti              text,
    key_kind         text NOT NULL,
    card_id          bigint,
    account_id       bigint,
    pan_hash         text,
    acquirer_id      text NOT NULL DEFAULT '',
    stan             text NOT NULL DEFAULT '',
    rrn              text NOT NULL DEFAULT '',
    xmit_at          text NOT NULL DEFAULT '',   -- field 7 MMDDhhmmss as sent
    local_at         text,                       -- fields 13+12
    terminal_id      text,
    merchant_id      text,
    merchant_name    text,
    mcc              text,
    country          text,
    channel          text,
    txn_currency     text,
    txn_amount       bigint,
    bill_currency    text,
    bill_amount      bigint,
    amount_requested bigint NOT NULL DEFAULT 0,  -- in the account's currency
    amount_approved  bigint NOT NULL DEFAULT 0,
    amount_reversed  bigint NOT NULL DEFAULT 0,
    amount_captured  bigint NOT NULL DEFAULT 0,
    hold_amount      bigint NOT NULL DEFAULT 0 CHECK (hold_amount >= 0),
    status           text NOT NULL,
    response_code    text NOT NULL,
    approval_code    text,
    rule             text NOT NULL,
    policy_version   bigint,
    original_id      bigint,
    orig_mti         text,                       -- field 90 parts of a reversal
    orig_stan        text,
    orig_xmit_at     text,
    orig_acquirer_id text,
    overdrew         boolean NOT NULL DEFAULT false, -- a forced post took available below zero
    available_after  bigint,
    balance_after    bigint,
    currency         char(3),
    hold_expires_at  timestamptz,
    note             text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz
) WITH (fillfactor = 80);
CREATE SEQUENCE authorizations_id_seq OWNED BY authorizations.id;
CREATE UNIQUE INDEX authorizations_idem_uq ON authorizations (acquirer_id, stan, xmit_at, rrn, key_kind);
CREATE INDEX authorizations_rrn_idx ON authorizations (rrn, acquirer_id);
CREATE INDEX authorizations_card_idx ON authorizations (card_id, created_at);
CREATE INDEX authorizations_created_idx ON authorizations (created_at);
CREATE INDEX authorizations_open_idx ON authorizations (hold_expires_at) WHERE hold_amount > 0;
CREATE INDEX authorizations_unmatched_idx ON authorizations (orig_acquirer_id, orig_stan, orig_xmit_at)
    WHERE status = 'unmatched';

-- What a shadow policy version would have answered, next to the live answer.
CREATE TABLE shadow_decisions (
    auth_id        bigint NOT NULL,
    shadow_version bigint NOT NULL,
    live_code      text NOT NULL,
    live_rule      text NOT NULL,
    shadow_code    text NOT NULL,
    shadow_rule    text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shadow_decisions_version_idx ON shadow_decisions (shadow_version);

-- The double-entry ledger.  Every journal (a pair, or more, of entries with
-- the same journal_id) sums to zero.  book: 'A' available, 'H' held.
CREATE SEQUENCE journal_id_seq;
CREATE TABLE ledger_entries (
    id         bigserial PRIMARY KEY,
    journal_id bigint NOT NULL,
    account_id bigint NOT NULL,
    book       char(1) NOT NULL CHECK (book IN ('A', 'H')),
    amount     bigint NOT NULL,
    auth_id    bigint,
    memo       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id);
CREATE INDEX ledger_entries_journal_idx ON ledger_entries (journal_id);

-- Settings the functions read (hold expiry days etc.).
CREATE TABLE ledger_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO ledger_settings VALUES ('hold_expiry_days', '7'), ('cash_hold_expiry_days', '3');
