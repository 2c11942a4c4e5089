DROP TABLE core_idempotency_keys;
