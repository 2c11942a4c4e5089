"""Test plugins for the event bus: ``ledger`` publishes, ``tally`` and ``audit`` consume.

``tally_effects`` deliberately has no unique key: an event handled twice shows up as two rows.
``tally`` fails on purpose for events whose amount appears in ``tally_poison``, and sleeps for
``tally_delay`` seconds when that table holds a row (to be killed mid-handler).
"""
