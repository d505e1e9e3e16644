"""Drive the peer library SupplyNetPy on the peer network, reusing the shared driver's builder.

The network builder (``build_network``), the size table and ``bare_simpy_rate`` are imported
from the shared peer driver ``bench_supplynetpy.py`` (read-only; loaded with importlib from the
file named by the ``PEER_BENCH`` environment variable, or else from where the project's
development environment keeps it; see benchmarks/README.md), so the peer is built exactly as
the shared benchmark builds it. :func:`snp_replication` repeats that file's ``one_replication`` and
also returns the number of customer orders, so events per order can be compared.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import random
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "PEER_BENCH",
    "buyers_choose_per_order",
    "customers_take_available",
    "load_peer_module",
    "partial_shipments",
    "snp_available",
    "snp_replication",
    "snp_version",
]

# The driver is not part of this repository (it belongs to the shared peer benchmark). The
# default is where the project's development environment keeps it, so that the suite there
# runs the peer without a setting; elsewhere PEER_BENCH names the file, and without it the
# peer section reports only this project's side (snp_available says why).
PEER_BENCH = Path(os.environ.get("PEER_BENCH", "/work/shared/bench/bench_supplynetpy.py"))

_MOD = None


def load_peer_module():
    """Import the shared peer driver as a module (cached)."""
    global _MOD
    if _MOD is None:
        spec = importlib.util.spec_from_file_location("bench_supplynetpy", PEER_BENCH)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {PEER_BENCH}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["bench_supplynetpy"] = mod
        spec.loader.exec_module(mod)
        _MOD = mod
    return _MOD


def snp_available() -> tuple[bool, str]:
    """Whether SupplyNetPy and the shared driver can be loaded (and why not)."""
    try:
        import SupplyNetPy.Components  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the environment
        return False, f"SupplyNetPy not importable: {exc}"
    if not PEER_BENCH.exists():
        return False, f"peer driver not found: {PEER_BENCH}"
    try:
        load_peer_module()
    except Exception as exc:  # pragma: no cover
        return False, f"peer driver failed to load: {exc}"
    return True, ""


def snp_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("supplynetpy")
    except Exception:  # pragma: no cover
        return None


def snp_replication(size: str, variant: str, seed: int, days: float = 1095,
                    partial: bool = False, take_available: bool = False,
                    per_order: bool = False) -> dict:
    """One peer replication, timed like the shared driver (build, then ``simulate_sc_net``).

    ``partial=True`` runs it under :func:`partial_shipments`, ``take_available=True`` under
    :func:`customers_take_available`, ``per_order=True`` under
    :func:`buyers_choose_per_order` (diagnostics, not how the shared driver runs the peer)."""
    if partial:
        with partial_shipments():
            return snp_replication(size, variant, seed, days, take_available=take_available,
                                   per_order=per_order)
    if take_available:
        with customers_take_available():
            return snp_replication(size, variant, seed, days, per_order=per_order)
    if per_order:
        with buyers_choose_per_order():
            return snp_replication(size, variant, seed, days)
    mod = load_peer_module()
    scm = mod.scm
    simpy = mod.simpy
    warnings.simplefilter("ignore")
    rng = random.Random(seed)
    scm.set_seed(seed)
    gc.collect()
    t0 = time.perf_counter()
    env = simpy.Environment()
    net, counts = mod.build_network(size, rng, days, variant, env)
    t1 = time.perf_counter()
    scm.simulate_sc_net(net, sim_time=days, logging=False)
    t2 = time.perf_counter()
    events = next(env._eid) - len(env._queue)
    dem = net["demand_by_customers"]
    got = net["fulfillment_received_by_customers"]
    return {
        "build_s": t1 - t0, "run_s": t2 - t1, "events": events,
        "orders": dem[0], "units_demanded": dem[1], "units_received": got[1],
        "fill": got[1] / dem[1] if dem[1] else None,
        **counts,
    }


# ---------------------------------------------------------------------------------------------
# Diagnostics: the peer with some of its rules set to ours
# ---------------------------------------------------------------------------------------------

@contextmanager
def customers_take_available():
    """Temporarily make every SupplyNetPy customer take what there is.

    The shared driver's customers (``Demand(tolerance=0.0)``, ``consume_available`` left
    False) take nothing when the stock cannot fill the whole order; this simulator's lost-sales
    customers take what there is. Inside this context every ``Demand`` built without an
    explicit ``consume_available`` gets ``consume_available=True`` (the library's own option),
    so the two simulators' customers follow the same rule. Used only to check that the
    fill-rate gap between them is that rule; the library's code is restored on exit.
    """
    load_peer_module()
    from SupplyNetPy.Components import core

    with _default_keyword(core.Demand, "consume_available", True):
        yield


@contextmanager
def buyers_choose_per_order():
    """Temporarily make every SupplyNetPy ``InventoryNode`` choose its supplier for each order.

    The library's default supplier selection (``SelectFirst`` in ``"fixed"`` mode) remembers
    the supplier of a node's *first* order and orders from it for the rest of the run, using
    another only while it or its link is disrupted. So when a node's first order falls in an
    outage of its first link, the second supplier becomes its supplier for good, and that
    supplier then serves two buyers. This simulator's buyers order on their first lane whenever
    it is open. Inside this context every ``InventoryNode`` built without an explicit
    ``supplier_selection_mode`` gets ``"dynamic"`` (the library's own option: the first
    supplier that can take the order, chosen afresh for each order), which is our rule. Only
    the disrupt variant's link outages can tell the two apart. (A ``Manufacturer`` already
    orders each raw material from the first supplier that can take it.) Used only to check
    that the fill-rate gap is that rule; the library's code is restored on exit.
    """
    load_peer_module()
    from SupplyNetPy.Components import core

    with _default_keyword(core.InventoryNode, "supplier_selection_mode", "dynamic"):
        yield


@contextmanager
def _default_keyword(cls, name: str, value):
    """Temporarily give keyword *name* the value *value* in every ``cls(...)`` that leaves it
    out (or passes None); the class's ``__init__`` is restored on exit."""
    orig_init = cls.__init__

    def init(self, *args, **kwargs):
        if kwargs.get(name) is None:
            kwargs[name] = value
        orig_init(self, *args, **kwargs)

    cls.__init__ = init
    try:
        yield
    finally:
        cls.__init__ = orig_init


@contextmanager
def partial_shipments():
    """Temporarily make SupplyNetPy's ``InventoryNode`` replenishment orders ship partially.

    SupplyNetPy 0.5.1 ships a replenishment order only when the supplier holds all of it
    (strict FIFO ``Container.get``); this simulator ships what the supplier has and queues the
    rest. Inside this context ``InventoryNode.process_order`` takes what the supplier has now,
    sends it (with its own lead time draw), and waits for the supplier's stock to rise for the
    rest. The supplier's inventory position (``on_hand``) still drops by the whole order at once
    and the units still owed count in ``Inventory.waiting_orders`` (so a ``Manufacturer``
    supplier keeps making its planned units), as in the library. Statistics other than the
    customers' and the buyer's receipts are not kept. Used only to explain the fill-rate gap
    between the two simulators; the library's code is restored on exit.
    """
    load_peer_module()
    from SupplyNetPy.Components import core

    orig_wait = core.Inventory.waiting_orders
    orig_order = core.InventoryNode.process_order

    def waiting_orders(self):
        return orig_wait(self) + getattr(self, "owed_extra", 0.0)

    def deliver(node, link, qty):
        yield node.env.timeout(link.lead_time())
        accepted = node.inventory.put(qty)
        if accepted < qty:
            node.inventory.on_hand -= qty - accepted
        node.stats.update_stats(fulfillment_received=[1, accepted])

    def process_order(self, supplier, reorder_quantity):
        gross = self.position()
        if gross + reorder_quantity > self.inventory.capacity:
            reorder_quantity = self.inventory.capacity - gross
        if reorder_quantity <= 0 or not supplier.can_take_order():
            return
        self.stats.update_stats(demand_placed=[1, reorder_quantity])
        src = supplier.source
        inv = src.inventory
        inv.update_carry_cost()
        inv.on_hand -= reorder_quantity
        inv.owed_extra = getattr(inv, "owed_extra", 0.0) + reorder_quantity
        inv._signal_inventory_drop()
        self.inventory.on_hand += reorder_quantity
        remaining = reorder_quantity
        while remaining > 1e-9:
            take = min(inv.level, remaining)
            if take > 1e-9 and not inv.inventory.get_queue:
                inv.update_carry_cost()
                inv.inventory.get(take, site_order=True)
                inv.owed_extra -= take
                remaining -= take
                inv._signal_inventory_drop()
                self.env.process(deliver(self, supplier, take))
                continue
            ev = src.inventory_raised
            if ev.triggered:
                src.inventory_raised = ev = self.env.event()
            yield ev

    core.Inventory.waiting_orders = waiting_orders
    core.InventoryNode.process_order = process_order
    try:
        yield
    finally:
        core.Inventory.waiting_orders = orig_wait
        core.InventoryNode.process_order = orig_order
