"""The memlane command line: a thin HTTP client of the daemon."""
