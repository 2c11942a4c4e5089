"""Search, suggest and feed over published projects, and their Redis cache."""
