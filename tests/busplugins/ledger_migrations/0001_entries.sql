CREATE TABLE ledger_entries (
    id          bigserial PRIMARY KEY,
    account_id  uuid      NOT NULL,
    amount      bigint    NOT NULL
);
