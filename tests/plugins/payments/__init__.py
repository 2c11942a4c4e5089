"""Tests of the payments plugin."""
