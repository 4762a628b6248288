"""HTTP clients with the Store's methods: :class:`Client` and :class:`AsyncClient`."""

from ctxbase.client.clients import AsyncClient, Client

__all__ = ["AsyncClient", "Client"]
