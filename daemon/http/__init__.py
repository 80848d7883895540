"""The HTTP surface: server, listeners, access checks, drain, routes, embeddings API."""
