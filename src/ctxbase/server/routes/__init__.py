"""Routes, one module per domain, all mounted under ``/api/v1``."""
