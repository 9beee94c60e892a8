"""One reference story for the crash sweep and the fault tests (real plugins).

Four orders are imported. Then two new orders arrive, a Pending one reserves
stock, the merchant ships one order fully and one partly and cancels a third in
the shop, Amazon cancels the fourth, and a shop stock level changes. One cycle
of the daemon (orders, shipments, stock) has to carry all of it across.
"""

from __future__ import annotations

from bench.chaos import Expectations
from tests.reliability.world import VISIBLE, SimWorld

A, B, C, D, E, F, PENDING = (f"302-000000{n}-0000001" for n in range(1, 8))
CYCLE = ("orders", "shipments", "stock")


def prepare(world: SimWorld) -> Expectations:
    """Four orders imported; then what happens before the reference cycle."""
    for oid, skus in ((A, {"REL-A": 1}), (B, {"REL-B": 2}), (C, {"REL-C": 1}), (D, {"REL-D": 1})):
        world.amazon.add_order(oid, skus, age_minutes=0)
    world.tick(VISIBLE)
    world.sync("orders")  # imports them (and starts reading shop changes first)
    world.amazon.add_order(E, {"REL-A": 1, "REL-B": 1}, age_minutes=0)
    world.amazon.add_order(F, {"REL-C": 2}, age_minutes=0)
    world.amazon.add_order(PENDING, {"REL-D": 2}, status="PENDING", age_minutes=0)
    world.shop.ship(A, None, "DHL Paket", "TRK-A")
    world.shop.ship(B, {"REL-B": 1}, "UPS", "TRK-B1")  # partial
    world.shop.cancel(C)
    world.amazon.marketplace_cancel(D)
    world.shop.set_stock("REL-A", 20)
    world.tick(VISIBLE)
    return Expectations(shop_cancelled={C}, amazon_cancelled={D})


def run_cycle(world: SimWorld) -> list[tuple[str, str]]:
    """The cycle's checkpoints, as ``(flow, checkpoint)``."""
    passed: list[tuple[str, str]] = []
    for flow in CYCLE:
        start = len(world.plan.seen)
        world.sync(flow)
        passed += [(flow, name) for name in world.plan.seen[start:]]
    return passed
