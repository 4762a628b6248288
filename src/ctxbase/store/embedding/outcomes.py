"""How the embedding provider has been answering in this process, for ``/health``: the
last failure of each model, cleared by its next success."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from ctxbase.db.schema import utcnow
from ctxbase.db.urls import mask_url


@dataclass(frozen=True)
class Failure:
    """The provider's last failure: what it said, and when."""

    message: str
    at: datetime
    monotonic: float

    @property
    def age(self) -> float:
        """Seconds since the failure."""
        return time.monotonic() - self.monotonic


class ProviderOutcomes:
    """The last failure of each model's provider, until the provider answers again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, Failure] = {}

    def failed(self, model: str, error: BaseException) -> None:
        message = mask_url(str(error) or type(error).__name__)
        with self._lock:
            self._failures[model] = Failure(message, utcnow(), time.monotonic())

    def succeeded(self, model: str) -> None:
        with self._lock:
            self._failures.pop(model, None)

    def failure(self, model: str) -> Failure | None:
        """The last failure of ``model``'s provider, None if it answered since."""
        with self._lock:
            return self._failures.get(model)
