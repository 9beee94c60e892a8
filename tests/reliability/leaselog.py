"""Test instrumentation loaded into ``ordersync run`` as a plugin (``test_two_daemons``).

It appends JSON lines to ``$ORDERSYNC_LEASELOG``: when this process took a
connection's lease (after the commit) and when it gave it back (before the
release), and which orders it imported (the ``order_imported`` hook). Taken
together, the lines of several daemons show whether two of them ever synced one
connection at the same time.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from engine import hookimpl
from engine.state import Lease, StateStore

PATH = os.environ.get("ORDERSYNC_LEASELOG", "")


def _write(event: str, **fields: Any) -> None:
    if not PATH:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields})
    fd = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())  # one write(2) with O_APPEND: lines never mix
    finally:
        os.close(fd)


_acquire = StateStore.acquire_lease
_release = StateStore.release_lease


def acquire_lease(self: StateStore, connection_id: str, ttl: float = 600.0) -> Lease | None:
    lease = _acquire(self, connection_id, ttl)
    if lease is not None:
        _write("acquired", connection=connection_id, epoch=lease.epoch, owner=lease.owner)
    return lease


def release_lease(self: StateStore, lease: Lease) -> None:
    _write("released", connection=lease.connection_id, epoch=lease.epoch, owner=lease.owner)
    _release(self, lease)


StateStore.acquire_lease = acquire_lease  # type: ignore[method-assign]
StateStore.release_lease = release_lease  # type: ignore[method-assign]


@hookimpl
def order_imported(connection_id: str, order: Any, shop_ref: Any) -> None:
    _write("imported", connection=connection_id, order=order.marketplace_order_id)
