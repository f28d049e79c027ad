"""Temporal Schedule management shared by the API, the CLI and the workers (imports neither)."""
