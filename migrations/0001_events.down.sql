DROP TABLE core_processed_events;
DROP TABLE core_event_sequences;
DROP TABLE core_outbox;
