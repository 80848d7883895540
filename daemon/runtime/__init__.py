"""The single-writer runtime: writer (group commit), projector, indexer, linker, job scheduling."""
