"""Tests of the agents plugin."""
