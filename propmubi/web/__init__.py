"""The HTTP layer: route declarations, middlewares, OpenAPI, typed keys."""
