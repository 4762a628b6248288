"""The REST server: ``create_app()`` builds the FastAPI application."""

from ctxbase.server.app import create_app

__all__ = ["create_app"]
