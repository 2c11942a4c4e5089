"""KYC of agents and builders: submissions through the API, review in the console, identity
numbers sealed at rest (:mod:`propmubi_plugins.auth.pii`) and their re-encryption."""
