"""Temporal Schedule management shared by the API, the CLI and activities (imports neither)."""
