"""The engine's vocabulary shared with the policy layer and the results: event priorities and
the codes of the change records.

A leaf module (it imports nothing from ``sim``), so that :mod:`sim.engine`,
:mod:`sim.policy`, :mod:`sim.results` and :mod:`sim.flows` read the same numbers without
importing one another.

Priorities
----------
SimPy orders simultaneous events by ``(time, priority, insertion id)``; the engine gives every
event one of these priorities (see "Order of events within one instant" in :mod:`sim.engine`).

Record codes
------------
The change log of each stock holds ``(time, code, quantity)`` records. The codes are floats
because the logs become float arrays after the run: numpy converts a Python int to a double
about 2.5 times slower than a float, which made the conversion of a log a third slower.
"""

from __future__ import annotations

__all__ = [
    "PRIORITY_POLICY", "PRIORITY_ARRIVAL", "PRIORITY_PRODUCTION", "PRIORITY_DEMAND",
    "PRIORITY_REVIEW", "REC_RECEIVED", "REC_PRODUCED", "REC_SHIPPED", "REC_CONSUMED",
    "REC_ORDERED", "REC_ORDER_IN", "REC_CANCELLED", "REC_RETURNED", "REC_BACKLOG_DROP",
]

PRIORITY_POLICY = 0        # policy changes take effect first
PRIORITY_ARRIVAL = 1       # shipments arrive and are put away; policy reviews end
PRIORITY_PRODUCTION = 2    # batches complete and new ones start
PRIORITY_DEMAND = 3        # customer orders (each demand stock has its own value in [3, 4))
PRIORITY_REVIEW = 4        # periodic inventory reviews

REC_RECEIVED = 0.0      # arrival from a lane
REC_PRODUCED = 1.0      # production completed into this stock
REC_SHIPPED = 2.0       # shipped out on a lane
REC_CONSUMED = 3.0      # consumed as a recipe input
REC_ORDERED = 4.0       # replenishment order placed (on order +)
REC_ORDER_IN = 5.0      # order received from a downstream lane (backlog +)
REC_CANCELLED = 6.0     # replenishment cancelled by the supplier side (on order -)
REC_RETURNED = 7.0      # shipment returned to this stock (e.g. licence denied)
REC_BACKLOG_DROP = 8.0  # backlog removed without shipping (buyer re-routed)

