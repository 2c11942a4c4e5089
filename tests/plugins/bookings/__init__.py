"""Tests of the bookings plugin."""
