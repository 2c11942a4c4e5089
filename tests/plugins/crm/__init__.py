"""Tests of the crm plugin."""
