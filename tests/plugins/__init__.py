"""Tests of the domain plugins, one package per plugin."""
