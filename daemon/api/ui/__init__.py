"""The viewer: a local web UI served by the daemon on its TCP listener (``/ui/``)."""
