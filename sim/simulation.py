"""The run path of one replication, in one function: network -> scenario -> model -> recording
-> Run.

:func:`simulate` is the whole data path of the package for one replication, in the order of
its layers: the network is loaded and validated (:mod:`sim.network`), the scenario resolved
(:mod:`sim.scenario`), the SimPy model built and run (:mod:`sim.engine`, which hands over
plain recorded arrays, :class:`~sim.records.Recording`), and the
:class:`~sim.results.Run` made of those records (:mod:`sim.results`). Experiments (Monte
Carlo, sweeps) call it once per replication.
"""

from __future__ import annotations

import datetime as _dt

from .engine import Model, gc_paused
from .network import load_network
from .results import Run
from .scenario import resolve_scenario

__all__ = ["simulate"]


def simulate(network="rare_earth_2025", scenario=None, *, seed: int = 0, replication: int = 0,
             start: _dt.date | str | None = None, horizon_days: float | None = None,
             demand_mode: str = "bulk", production_mode: str = "bulk",
             shortage_after: _dt.date | str | None = None) -> Run:
    """Run one replication and return its :class:`~sim.results.Run`.

    Parameters
    ----------
    network:
        A :class:`~sim.network.Network`, a graph built in Python, a TOML path or the name of a
        shipped network (default ``"rare_earth_2025"``).
    scenario:
        A :class:`~sim.scenario.Scenario`, a TOML path, the name of a built-in scenario, or
        ``None`` (no policy events).
    seed, replication:
        Root seed and replication index of the random streams (see :mod:`sim.streams`).
    start:
        Calendar date of day 0 (default: the scenario's start, else 2025-01-01).
    horizon_days:
        Length of the run in days (default: to the scenario's end, else to 2029-01-01).
    demand_mode:
        ``"bulk"`` (default, fast) or ``"events"`` (one SimPy event per customer order; same
        results, for testing).
    production_mode:
        ``"bulk"`` (default): production lines without inputs complete batches that ship
        nothing without an event; ``"events"``: every batch is an event (same results).
    shortage_after:
        Event date from which ``first_shortage_after_day`` is measured (default: the
        scenario's ``shortage_after``, else the start; ``first_shortage_day`` always counts
        from the start).

    Examples
    --------
    >>> run = simulate("teaching", seed=1, horizon_days=365)
    >>> 0.0 <= run.kpi("fill_rate", "network") <= 1.0
    True
    """
    net = load_network(network)
    sc = resolve_scenario(scenario)
    # the collector stays off throughout: the model is taken apart (release) before the
    # Run is made, so no collection ever walks it (see sim.engine.gc_paused)
    with gc_paused():
        model = Model(net, sc, seed=seed, replication=replication, start=start,
                      horizon_days=horizon_days, demand_mode=demand_mode,
                      production_mode=production_mode, shortage_after=shortage_after)
        recording = model.run()
        model.release()
        return Run.from_recording(recording)
