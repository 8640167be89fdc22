"""Thin wrappers over service clients; client errors leave here as Transient/Terminal errors."""
