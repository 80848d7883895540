"""The HTTP API: server, listeners, access checks, drain, routes, embeddings API."""
