"""The staff console shell: staff accounts, sessions, CSRF, login, navigation, dashboard."""
