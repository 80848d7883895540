"""The event log: memlane's single source of truth (events, codec, framing, segments, log)."""
