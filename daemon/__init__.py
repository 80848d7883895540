"""The memlane daemon: log writer, projections, embeddings and the HTTP API."""
