"""API keys of one server process, looked up once and then answered from memory.

Looking a key up costs a join of keys and tenants and a principal built from the row;
every request paid it. Here a working key's principal is kept (keyed by the key's hash,
at most ``max_entries``, least recently used first out, each for at most ``ttl_seconds``)
and served while the database's key generation is the one it was read under.

The generation (:mod:`ctxbase.store.key_generation`) changes in the same
transaction that revokes a key or changes a tenant, and it is read on every request (one
prepared point read), so a revoked key is refused on its very next request by every
process on the database, the one that revoked it or any other. Expiry is checked on every
use; unknown keys are never cached, so guessing is still counted and locked out.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctxbase.db.schema import utcnow
from ctxbase.store.key_generation import key_generation
from ctxbase.store.tenancy import Principal, hash_key

if TYPE_CHECKING:
    from ctxbase.db.database import Database
    from ctxbase.store import Store

_UNREAD: Any = object()


@dataclass
class _Entries:
    """The principals cached for one database, valid under ``generation``."""

    generation: Any = _UNREAD
    principals: OrderedDict[str, tuple[float, Principal]] | None = None


class KeyCache:
    """Principals of working keys per database, dropped when its key generation changes."""

    def __init__(self, *, max_entries: int = 10_000, ttl_seconds: float = 60.0) -> None:
        self.max_entries, self.ttl_seconds = max_entries, ttl_seconds
        self._databases: weakref.WeakKeyDictionary[Database, _Entries] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def principal(self, store: Store, key: str) -> Principal | None:
        """The principal of ``key`` in ``store``'s database, or None if it does not work."""
        generation = key_generation(store.db)  # read first: a later change drops what follows
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            entries = self._entries(store.db, generation)
            cached = entries.get(digest)
            if cached is not None and now - cached[0] < self.ttl_seconds:
                entries.move_to_end(digest)
                principal: Principal | None = cached[1]
            else:
                principal = None
        if principal is None:
            principal = store.keys.authenticate(key)
            if principal is not None:
                self._keep(store.db, generation, digest, now, principal)
        expired = (
            principal is not None
            and principal.expires_at is not None
            and (principal.expires_at <= utcnow())
        )
        return None if expired else principal

    def _entries(self, db: Database, generation: Any) -> OrderedDict[str, tuple[float, Principal]]:
        found = self._databases.get(db)
        if found is None:
            found = self._databases[db] = _Entries()
        if found.principals is None or found.generation != generation:
            found.generation, found.principals = generation, OrderedDict()
        return found.principals

    def _keep(
        self, db: Database, generation: Any, digest: str, now: float, principal: Principal
    ) -> None:
        with self._lock:
            found = self._databases.get(db)
            if found is None or found.principals is None or found.generation != generation:
                return  # the generation moved on meanwhile: what was read may be stale
            found.principals[digest] = (now, principal)
            found.principals.move_to_end(digest)
            while len(found.principals) > self.max_entries:
                found.principals.popitem(last=False)
