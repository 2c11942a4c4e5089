DROP TABLE payments_settlement_lines;
DROP TABLE payments_refunds;
DROP TABLE payments_events;
DROP TABLE payments_intents;
