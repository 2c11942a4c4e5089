"""Event-bus metrics of the consuming side (publishing and relaying ones live with their code)."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERED = Counter("propmubi_events_delivered_total",
                    "Events whose handler committed, by group and type.", ["group", "type"])
DUPLICATES = Counter("propmubi_events_duplicates_total",
                     "Deliveries skipped because the event was already processed.", ["group"])
FAILED = Counter("propmubi_events_failed_total", "Handler failures, by group and type.",
                 ["group", "type"])
RETRIED = Counter("propmubi_events_retried_total",
                  "Pending deliveries claimed for another attempt, by group.", ["group"])
DEAD = Counter("propmubi_events_dead_lettered_total",
               "Events moved to a dead-letter stream, by group and type.", ["group", "type"])
TRIMMED_UNACKED = Counter("propmubi_events_trimmed_unacked_total",
                          "Pending entries found trimmed from their stream before being acked.",
                          ["group"])
HANDLER_SECONDS = Histogram("propmubi_events_handler_duration_seconds",
                            "Time to process one delivery batch, by group.", ["group"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                     2.5, 5, 10, 30))
END_TO_END = Histogram("propmubi_events_end_to_end_seconds",
                       "From the event's occurrence to its handler's commit, by group.",
                       ["group"],
                       buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                5, 10, 30, 60))
PENDING = Gauge("propmubi_events_group_pending", "Delivered but not acknowledged entries.",
                ["group", "stream"])
LAG = Gauge("propmubi_events_group_lag_seconds",
            "Age of the newest entry the group has not yet read (0 when caught up).",
            ["group", "stream"])
DEAD_WAITING = Gauge("propmubi_events_dead_letters", "Entries in a group's dead-letter stream.",
                     ["group"])
