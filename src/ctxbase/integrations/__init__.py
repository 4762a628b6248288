"""Adapters that plug ctxbase into agent frameworks (optional extras)."""
