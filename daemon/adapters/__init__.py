"""The outside world: model, Gemini, files, git, sd_notify, transcripts, token, paths, config."""
