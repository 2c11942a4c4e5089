"""Tests of the auth plugin."""
