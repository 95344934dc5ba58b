"""Lambda entry points. Each builds once at module level and delegates; importing does no network I/O."""
