"""The run path (sim.simulation.simulate): the engine hands over plain recorded arrays, the
Run is built from them above the engine, and the scenario's dated events are known without
building a model."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt

import numpy as np
import pytest

import sim
from sim.engine import Model, run_window
from sim.errors import ModelError
from sim.policy import scheduled_events
from sim.records import PRIORITY_POLICY, Recording
from sim.results import Run


def _objects(value):
    """Every object reachable through the fields, items and values of *value*."""
    yield value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _objects(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _objects(k)
            yield from _objects(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _objects(v)


def _sim_imports(path) -> set[str]:
    """The modules of the package that the module at *path* imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names |= {node.module} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("sim."):
                names.add(node.module[4:])
        elif isinstance(node, ast.Import):
            names |= {a.name[4:] for a in node.names if a.name.startswith("sim.")}
    return names


def test_engine_imports_nothing_above_it(repo_root):
    """The engine and the policy layer import no module of the results or anything above
    (not even inside a function); sim.records, which both share with the results, imports
    nothing from the package."""
    above = {"results", "metrics", "flows", "tables", "simulation", "experiment", "sweep",
             "plots", "cli", "experiment_cli"}
    for name in ("engine", "policy"):
        assert not _sim_imports(repo_root / "sim" / f"{name}.py") & above, name
    assert _sim_imports(repo_root / "sim" / "records.py") == set()
    assert _sim_imports(repo_root / "sim" / "simpy_access.py") == set()


def test_recording_holds_arrays_and_plain_values(stressed_teaching_dict, stress_scenario):
    """What Model.run hands over refers to no engine, policy or SimPy object (so it outlives
    the model taken apart), and the Run built from it is the one sim.simulate returns."""
    net = sim.Network.from_dict(stressed_teaching_dict)
    model = Model(net, stress_scenario, seed=4)
    recording = model.run()
    assert isinstance(recording, Recording)
    modules = {type(o).__module__ for o in _objects(recording)}
    assert not {m for m in modules
                if m.startswith(("sim.engine", "sim._engine_compiled", "sim.policy", "simpy"))}
    assert recording.stocks and recording.lanes and recording.lines and recording.demand
    assert all(s.log.ndim == 2 and s.log.shape[1] == 3 for s in recording.stocks)
    assert all(l.log.ndim == 2 and l.log.shape[1] == 5 for l in recording.lanes)
    model.release()
    run = Run.from_recording(recording)
    same = sim.simulate(net, stress_scenario, seed=4)
    assert run.kpi_rows() == same.kpi_rows()
    for a, b in zip(run.stocks, same.stocks):
        assert np.array_equal(a.log, b.log)


@pytest.mark.parametrize("start, horizon", [(None, None), ("2026-03-01", 200.5), (None, 30)])
def test_run_window_is_the_model_s(start, horizon):
    sc = sim.load_scenario("truce-uncertain")
    model = Model(sim.load_network("rare_earth_2025"), sc, start=start, horizon_days=horizon)
    assert run_window(sc, start, horizon) == (model.start, model.horizon)


@pytest.mark.parametrize("horizon", [0, -3, float("nan"), True, "30", 1e9])
def test_run_window_refuses_a_bad_horizon(horizon):
    with pytest.raises(ModelError, match="horizon_days"):
        run_window(sim.Scenario(), None, horizon)


@pytest.mark.parametrize("name", sim.list_scenarios())
def test_scheduled_events_of_shipped_scenarios(name):
    """Without a model: the surges are the events the policy engine of a built model notes
    when it starts, and the dated events (controls and their changes, truce, tariffs) are
    distinct, in order, within the run, and include every control that starts in it."""
    sc = sim.load_scenario(name)
    net = sim.load_network("rare_earth_2025")
    model = Model(net, sc, seed=0, horizon_days=900)
    events = scheduled_events(sc, model.start, model.horizon)
    noted = [(e.day, e.kind, e.label) for e in model.policy.events]
    assert events[:len(noted)] == noted
    dated = events[len(noted):]
    assert dated == sorted(set(dated))
    assert all(0 <= day < model.horizon and kind != "surge" for day, kind, _ in dated)
    for c in sc.controls:
        day = model.day_of(c.start)
        if 0 <= day < model.horizon:
            assert (day, "control", f"{c.id} ({c.regime})") in dated


def test_scheduled_events_count_from_the_start():
    """The same scenario run from a later start dates its events that much earlier, and
    leaves out those before the start."""
    sc = sim.load_scenario("truce-uncertain")
    first = scheduled_events(sc, dt.date(2025, 1, 1), 4 * 365.0)
    later = scheduled_events(sc, dt.date(2025, 7, 1), 4 * 365.0)
    shift = (dt.date(2025, 7, 1) - dt.date(2025, 1, 1)).days
    moved = {(d - shift, k, label) for d, k, label in first if d - shift >= 0}
    assert moved <= set(later)
    assert all(d >= 0 for d, _, _ in later)


def test_simpy_clock_is_the_model_s(teaching):
    """SimPy's clock is the model's: an engine callback (not a SimPy event) sees ``env.now``
    at its own time, and the run leaves both at the horizon."""
    model = Model(teaching, seed=1, horizon_days=50)
    seen = []
    model.at(12.25, PRIORITY_POLICY, lambda _: seen.append((model.env.now, model.now)))
    model.run()
    assert seen == [(12.25, 12.25)]
    assert model.env.now == model.now == 50.0
