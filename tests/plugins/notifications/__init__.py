"""Tests of the notifications plugin."""
