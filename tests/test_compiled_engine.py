"""The optional compiled build of the engine (sim/engine.py compiled with Cython, typed by
sim/engine.pxd) gives the same results as the pure-Python engine, bit for bit, and is used only
when it was built from the sources in the tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import sim
import sim.engine

COMPILED, WHY_NOT = sim.engine._compiled_module("compiled")

# Runs in a fresh interpreter (the build is chosen when sim is imported): every recorded array,
# scalar and KPI of each configuration goes into one SHA-256 per configuration.
DIGEST_SCRIPT = textwrap.dedent(r'''
    import dataclasses, hashlib, json, sys
    import numpy as np
    import sim, sim.engine

    cases_in = json.loads(sys.stdin.read())
    sys.path.insert(0, cases_in["bench_dir"])
    import peer_network

    def feed(h, value):
        if isinstance(value, np.ndarray):
            h.update(repr((value.dtype.str, value.shape)).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                if f.name != "stats":              # timings
                    h.update(f.name.encode())
                    feed(h, getattr(value, f.name))
        elif isinstance(value, (list, tuple)):
            h.update(b"[%d" % len(value))
            for v in value:
                feed(h, v)
        else:
            h.update(repr(value).encode())

    def digest(run):
        h = hashlib.sha256()
        feed(h, run)
        feed(h, run.kpi_rows())
        feed(h, [(r["purchases"], r["releases"]) for r in run.reserves])
        return h.hexdigest()

    out = {"engine": sim.engine.ENGINE, "digests": {}, "events": {}}
    stressed = sim.Network.from_dict(cases_in["stressed"])
    stress = sim.Scenario.from_dict(cases_in["stress"])
    cases = []
    for name in sim.list_scenarios():
        cases.append((f"default/{name}", "rare_earth_2025", name, {"horizon_days": 900}))
    cases.append(("default/truce-uncertain/full", "rare_earth_2025", "truce-uncertain", {}))
    cases.append(("default/truce-uncertain/events", "rare_earth_2025", "truce-uncertain",
                  {"horizon_days": 900, "demand_mode": "events", "production_mode": "events"}))
    cases.append(("teaching", "teaching", None, {}))
    from sim.scenario import with_sourcing        # cost-aware sourcing moves shares
    cases.append(("default/truce-holds+sourcing", "rare_earth_2025",
                  with_sourcing("truce-holds"), {"horizon_days": 900}))
    reserve = sim.with_reserve(                   # a strategic reserve: build-up, releases
        "rare_earth_2025", "nds_us", "ndfeb_hre_magnet", target_t=300, civil=True,
        build_rate_t_per_year=200, build_start="2026-01-01", release_cover_days=30,
        release_rate_t_per_day=2.0, release_to=["us_auto"])
    cases.append(("default/truce-expires/reserve", reserve, "truce-expires", {}))
    cases.append(("stressed/stress", stressed, stress, {}))
    cases.append(("stressed/stress/events", stressed, stress,
                  {"demand_mode": "events", "production_mode": "events"}))
    for size in ("medium", "large"):
        net = peer_network.peer_network(size)
        cases.append((f"peer/{size}", net, None, {"horizon_days": 365}))
        for rule in ("keep", "reroute"):
            sc = peer_network.peer_scenario(size, "disrupt", seed=1, days=365,
                                            queued_orders=rule)
            cases.append((f"peer/{size}/disrupt/{rule}", net, sc, {"horizon_days": 365}))
    for label, net, sc, kw in cases:
        for rep in (0, 1):
            model = sim.engine.Model(sim.load_network(net), sc, seed=3, replication=rep, **kw)
            run = sim.Run.from_recording(model.run())
            out["digests"][f"{label}#{rep}"] = digest(run)
            out["events"][f"{label}#{rep}"] = model.events
    print(json.dumps(out))
''')


def _digests(engine: str, cases_in: dict) -> dict:
    env = dict(os.environ, RARE_EARTH_SIM_ENGINE=engine)
    proc = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], input=json.dumps(cases_in),
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.skipif(COMPILED is None, reason=f"compiled engine not available: {WHY_NOT}")
def test_compiled_and_python_engines_record_identical_results(repo_root, stressed_teaching_dict,
                                                              stress_scenario_spec):
    """Every scenario of the default network (and one-event-per-order and per-batch modes),
    the teaching network, a stressed network under a stress scenario (quotas, licences,
    outages, closures, surges) and the peer networks with their disruptions: the same bits in
    every recorded array and KPI, and the same number of events, from both builds."""
    cases_in = {"stressed": stressed_teaching_dict, "stress": stress_scenario_spec,
                "bench_dir": str(repo_root / "benchmarks")}
    python = _digests("python", cases_in)
    compiled = _digests("compiled", cases_in)
    assert python["engine"] == "python"
    assert compiled["engine"] == "compiled"
    assert len(python["digests"]) >= 30
    assert python["events"] == compiled["events"]
    differ = [k for k in python["digests"] if python["digests"][k] != compiled["digests"][k]]
    assert not differ, f"the builds differ on {differ}"


@pytest.mark.skipif(COMPILED is None, reason=f"compiled engine not available: {WHY_NOT}")
def test_compiled_engine_is_used_when_current_and_refused_when_stale(monkeypatch):
    """``auto`` takes the compiled build when it matches engine.py and engine.pxd; after an
    edit (another digest) it is refused, with a message that says how to rebuild."""
    assert sim.engine._compiled_module("auto") == (COMPILED, None)
    assert sim.Model.__module__ == COMPILED.__name__ or \
        os.environ.get("RARE_EARTH_SIM_ENGINE", "auto") == "python"
    monkeypatch.setattr(sim.engine, "source_digest", lambda: "0" * 64)
    for mode in ("auto", "compiled"):
        module, problem = sim.engine._compiled_module(mode)
        assert module is None
        assert "another version of sim/engine.py" in problem and "pip install -e ." in problem


def test_engine_choice_from_the_environment(repo_root):
    """``RARE_EARTH_SIM_ENGINE=python`` runs the pure-Python engine; a value that is not a
    choice is named in a warning, and the run goes on (both builds give the same results);
    asking for the compiled build where there is none says so."""
    probe = "import sim, sim.engine as e; print(e.ENGINE, sim.Model.__module__)"

    def run(value):
        env = dict(os.environ, RARE_EARTH_SIM_ENGINE=value)
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              env=env, timeout=120, cwd=repo_root)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split(), proc.stderr

    (engine, module), err = run("python")
    assert (engine, module) == ("python", "sim.engine") and "Warning" not in err
    (engine, module), err = run("fast")
    assert engine == "python"
    assert "RARE_EARTH_SIM_ENGINE must be one of auto, compiled, python, got 'fast'" in err
    (engine, module), err = run("compiled")
    if COMPILED is None:
        assert engine == "python" and "compiled engine is not installed" in err
    else:
        assert (engine, module) == ("compiled", "sim._engine_compiled") and "Warning" not in err


def test_manifest_records_the_engine_build():
    assert sim.simulate("teaching", seed=0, horizon_days=30).manifest()["versions"]["engine"] \
        == sim.engine.ENGINE


# The compiled build's own data structures, tested as they are in each build (they are plain
# Python in sim.engine, C-typed in the compiled module).
BUILDS = [pytest.param(sim.engine, id="python")]
if COMPILED is not None:
    BUILDS.append(pytest.param(COMPILED, id="compiled"))


@pytest.mark.parametrize("module", BUILDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_event_heap_pops_in_the_order_of_simpys_queue(module, seed):
    """Entries come off the heap in the order of the tuple keys ``(time, priority, id)`` that
    SimPy's queue sorts by (many ties in time and priority, pushes between pops), whatever
    the capacity it started with."""
    import heapq

    import numpy as np

    rng = np.random.default_rng(seed)
    heap = module.EventHeap(capacity=4)
    reference: list = []
    popped, expected = [], []
    eid = 0
    for _ in range(3000):
        if reference and rng.random() < 0.45:
            key = (heap.tv[0], heap.pv[0], heap.ev[0])
            popped.append((float(key[0]), int(key[1]), int(key[2]), heap.pop()))
            expected.append(heapq.heappop(reference))
        else:
            t = float(rng.integers(0, 40)) + (0.5 if rng.random() < 0.3 else 0.0)
            prio = int(rng.integers(0, 5))
            item = ("entry", eid)
            heap.push(t, prio, eid, item)
            heapq.heappush(reference, (t, prio, eid, item))
            eid += 1
        assert len(heap) == len(reference)
    while reference:
        key = (heap.tv[0], heap.pv[0], heap.ev[0])
        popped.append((float(key[0]), int(key[1]), int(key[2]), heap.pop()))
        expected.append(heapq.heappop(reference))
    assert popped == expected
    assert len(heap) == 0 and heap.entries() == []


@pytest.mark.parametrize("module", BUILDS)
def test_record_log_keeps_every_number_in_order(module):
    """A change log grows past its capacity without losing or reordering a record, and reads
    back as the (n, width) array that the same numbers in a list give."""
    import numpy as np

    log = module.RecordLog(3, capacity=4)
    plain: list = []
    for i in range(500):
        t, q = i * 0.1, 1.0 / (i + 1)
        if i % 7 == 0:
            log.extend((t, 5, q))          # as the policy code records
        else:
            log.add3(t, 2, q)
        plain.extend((t, 2 if i % 7 else 5, q))
    assert len(log) == len(plain)
    expected = module.records_array(plain, 3)
    got = module.records_array(log, 3)
    assert got.shape == (500, 3)
    assert got.tobytes() == expected.tobytes()
    wide = module.RecordLog(4, capacity=1)
    for i in range(50):
        wide.add4(i, i + 0.5, -i, 1e-300 * i)
    assert np.array_equal(wide.array(), np.array([[i, i + 0.5, -i, 1e-300 * i]
                                                  for i in range(50)]))
    five = module.RecordLog(5, capacity=2)
    for i in range(50):
        five.add5(i, i + 0.5, -i, 1e-300 * i, 2.0 ** -i)
    assert np.array_equal(five.array(), np.array([[i, i + 0.5, -i, 1e-300 * i, 2.0 ** -i]
                                                  for i in range(50)]))
