"""Towers and units of the catalogue's projects: prices, statuses and the CSV import."""
