"""Booking terms of a project: the booking amount and the cancellation policy."""
