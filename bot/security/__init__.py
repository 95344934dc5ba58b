"""Authorization policy (who may run what) and the audit record of every command and action."""
