"""What a request means: memories, search, recall, hooks, sessions, briefing, lifecycle jobs."""
