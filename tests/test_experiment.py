"""Monte Carlo experiments, paired comparisons, sequential stopping and sweeps
(:mod:`sim.experiment`, :mod:`sim.sweep`, :mod:`sim.experiment_cli`).

Everything runs on the teaching network or a one-stage network over short horizons so the file
stays well under a minute and a half; the larger statistical check (CI coverage over many
batches) is marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import typing

import concurrent.futures as cf
import copy
import json
import logging
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import sim
from sim.distributions import Distribution
from sim.errors import ModelError, RunFailedError, ScenarioError
from sim.experiment import (
    GRID_DAYS,
    MonteCarloResults,
    SerialExecutor,
    make_executor,
    monte_carlo,
    paired_comparison,
    summarise,
)
from sim.sweep import SweepResults, sweep

DAYS = 365
WEEKS = math.ceil(DAYS / GRID_DAYS)
Z95 = 1.959963984540054


# ---------------------------------------------------------------------------------------------
# Models shared by the tests
# ---------------------------------------------------------------------------------------------

def _stressed(teaching_doc: dict) -> dict:
    """The teaching network with lost sales at the car maker and the magnet maker cut from 1200
    to 500 t/yr (below the 760 t/yr of demand), so fill rates vary between replications."""
    d = copy.deepcopy(teaching_doc)
    d["nodes"]["auto_us"]["unmet"] = "lost"
    d["nodes"]["magnets_jp"]["production"]["ndfeb_magnet"]["capacity_t_per_year"] = 500
    return d


def _random_policy_scenario() -> sim.Scenario:
    """Licensing with random review times and denials, a ban under a truce with a random
    outcome, random outages and a demand surge: every kind of random stream the policy uses."""
    return sim.Scenario.from_dict({
        "scenario": {"name": "random-policy", "start": "2025-01-01", "end": "2026-01-01",
                     "shortage_after": "2025-03-01"},
        "controls": {
            "heavy": {"exporter": "CN", "elements": ["Dy", "Tb"], "start": "2025-03-01",
                      "regime": "licensing", "approval_probability": 0.6, "avoid_days": 20,
                      "review_days": {"dist": "triangular", "min": 10, "mode": 20, "max": 40}},
            "light": {"exporter": "CN", "elements": ["Nd", "Pr"], "start": "2025-05-01",
                      "regime": "ban"},
        },
        "truce": {"suspends": ["light"], "start": "2025-06-01", "duration_days": 90,
                  "outcomes": {"reinstate": 0.4, "extend": 0.4, "escalate": 0.2},
                  "escalation": {"regime": "ban"}},
        "outages": [{"node": "mine_cn", "mtbf_days": 120, "mttr_days": 10}],
        "demand_surges": [{"sector": "defense", "factor": 1.5, "start": "2025-07-01",
                           "end": "2025-10-01"}],
    })


def _surge_scenario(factor: float = 1.3) -> sim.Scenario:
    return sim.Scenario.from_dict({
        "scenario": {"name": f"auto-surge-{factor:g}", "start": "2025-01-01"},
        "demand_surges": [{"sector": "automotive", "factor": factor, "start": "2025-03-01",
                           "end": "2025-09-01"}]})


def _bad_escalation_scenario() -> sim.Scenario:
    """A ban under a truce whose escalation switches it to licensing without a review time:
    rejected when the scenario is read (it used to fail only inside the replications)."""
    return sim.Scenario.from_dict({
        "scenario": {"name": "bad-escalation", "start": "2025-01-01", "end": "2026-01-01"},
        "controls": {"dy": {"exporter": "CN", "elements": ["Dy", "Tb"], "start": "2025-02-01",
                            "regime": "ban"}},
        "truce": {"suspends": ["dy"], "start": "2025-03-01", "duration_days": 60,
                  "outcomes": {"reinstate": 0.5, "escalate": 0.5},
                  "escalation": {"regime": "licensing"}}})


@dataclasses.dataclass(frozen=True)
class FlakyLeadTime(Distribution):
    """A fixed 5-day lead time whose sampler raises in the replications where the first uniform
    draw of its stream exceeds 0.6: a model error that only some replications hit."""

    name: typing.ClassVar[str] = "flaky"

    @property
    def mean(self) -> float:
        return 5.0

    @property
    def variance(self) -> float:
        return 0.0

    def _draw(self, rng, n):
        if rng.random() > 0.6:
            raise RuntimeError("flaky lead time")
        return np.full(n, 5.0)


def _flaky_network(teaching: sim.Network) -> sim.Network:
    d = teaching.to_dict()
    for lane in d["lanes"]:
        if lane["to"] == "auto_us":
            lane["lead_time"] = FlakyLeadTime()
    return sim.Network.from_dict(d)


@pytest.fixture(scope="module")
def stressed(teaching) -> sim.Network:
    return sim.Network.from_dict(_stressed(teaching.to_dict()))


@pytest.fixture(scope="module")
def random_policy() -> sim.Scenario:
    return _random_policy_scenario()


def _assert_same_results(a: MonteCarloResults, b: MonteCarloResults) -> None:
    """Identical per-replication tables, failures, series and quantile bands."""
    assert_frame_equal(a.per_rep, b.per_rep, check_exact=True)
    assert [(f["replication"], f["error"]) for f in a.failures] == \
        [(f["replication"], f["error"]) for f in b.failures]
    assert sorted(a.series) == sorted(b.series)
    for name in a.series:
        np.testing.assert_array_equal(a.series[name], b.series[name])
        assert_frame_equal(a.bands(name), b.bands(name), check_exact=True)
    assert_frame_equal(a.summary(), b.summary(), check_exact=True)


# ---------------------------------------------------------------------------------------------
# Determinism across executors, worker counts and chunk sizes
# ---------------------------------------------------------------------------------------------

MC_KW = dict(reps=8, seed=11, horizon_days=DAYS, track=[("nds_us", "ndfeb_magnet")])


@pytest.fixture(scope="module")
def serial_result(teaching, random_policy) -> MonteCarloResults:
    return monte_carlo(teaching, random_policy, workers=1, **MC_KW)


def test_serial_result_is_sane(serial_result):
    """The reference run: 8 replications, no failures, run in-process, policy randomness
    visible (the truce outcome differs between replications)."""
    r = serial_result
    assert r.reps == 8
    assert r.failures == []
    assert r.meta["reps_used"] == 8
    assert r.meta["executor"] == "SerialExecutor"
    assert list(r.per_rep.index) == list(range(8))
    assert r.per_rep["truce_outcome|policy"].nunique() > 1
    assert r.per_rep["licence_reviews|policy"].min() > 0


def test_same_results_with_process_pool(teaching, random_policy, serial_result):
    """A ProcessPoolExecutor with 2 processes (given as executor, and made by workers=2) gives
    exactly the per-replication table and bands of the serial run."""
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        pooled = monte_carlo(teaching, random_policy, executor=pool, **MC_KW)
    _assert_same_results(serial_result, pooled)
    made = monte_carlo(teaching, random_policy, workers=2, **MC_KW)
    assert made.meta["executor"] == "ProcessPoolExecutor"
    _assert_same_results(serial_result, made)


def test_same_results_on_dask_cluster(teaching, random_policy, serial_result):
    """A Dask LocalCluster with 2 worker processes, through ``Client.get_executor()``, gives
    exactly the serial results."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        res = monte_carlo(teaching, random_policy, executor=client.get_executor(), **MC_KW)
    _assert_same_results(serial_result, res)


def _pickled_in_worker(blobs: list[bytes]) -> list:
    """Unpickle task payloads the way a worker process does; report what came out."""
    from sim.experiment import UNPACKED_KEEP, cached_inputs

    got = [pickle.loads(b) for b in blobs]
    return [[id(t.inputs) for t in got], [t.inputs.network.digest() for t in got],
            [t.reps for t in got], cached_inputs() <= UNPACKED_KEEP]


def test_shared_inputs_are_pickled_once_and_unpickled_once_per_process(teaching):
    """The tasks of a run share one network and scenario: their pickles carry the same bytes,
    prepared once; a worker process unpickles them into one object, equal to the original;
    a Dask client names them by the bytes' SHA-256; other inputs stay apart."""
    import hashlib

    from sim.experiment import ChunkTask, SharedInputs

    sc = sim.Scenario.from_dict({"scenario": {"name": "x"}})
    inputs = SharedInputs(teaching, sc)
    key, blob = inputs.packed()
    assert inputs.packed()[1] is blob                       # prepared once
    assert key == hashlib.sha256(blob).hexdigest() == inputs.__dask_tokenize__()
    other = SharedInputs(teaching, sim.Scenario.from_dict({"scenario": {"name": "y"}}))
    assert other.packed()[0] != key
    tasks = [ChunkTask(inputs, 4, (i,), None, None, ()) for i in range(3)] + \
        [ChunkTask(other, 4, (9,), None, None, ())]
    blobs = [pickle.dumps(t) for t in tasks]
    assert all(len(b) < len(blob) + 1000 for b in blobs)  # the bytes, not a second copy
    with cf.ProcessPoolExecutor(max_workers=1) as pool:
        ids, digests, reps, bounded = pool.submit(_pickled_in_worker, blobs).result()
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert digests == [teaching.digest()] * 4
    assert reps == [(0,), (1,), (2,), (9,)]
    assert bounded
    dask_base = pytest.importorskip("dask.base")
    # Dask names a task by hashing its arguments: by the inputs' key, never walking the network
    copy_ = pickle.loads(pickle.dumps(inputs))
    assert dask_base.tokenize(tasks[0]) == dask_base.tokenize(ChunkTask(copy_, 4, (0,), None, None, ()))
    assert dask_base.tokenize(tasks[0]) != dask_base.tokenize(tasks[1])


@pytest.mark.parametrize("chunk_size", [1, 3, 8])
def test_results_independent_of_chunk_size(teaching, random_policy, serial_result, chunk_size):
    """Chunks of 1, 3 (uneven) or all 8 replications give the same results."""
    res = monte_carlo(teaching, random_policy, executor=SerialExecutor(), chunk_size=chunk_size,
                      **MC_KW)
    assert res.meta["chunk_size"] == chunk_size
    _assert_same_results(serial_result, res)


def test_make_executor_kinds():
    """make_executor: one worker is in-process (not owned), more is an owned process pool."""
    ex, owned = make_executor(1)
    assert isinstance(ex, SerialExecutor)
    assert owned is None
    ex, owned = make_executor(2)
    try:
        assert isinstance(ex, cf.ProcessPoolExecutor)
        assert owned is True
    finally:
        ex.shutdown()


def test_other_seed_gives_other_numbers(teaching, random_policy, serial_result):
    """A different root seed changes the draws (the determinism above is not trivial)."""
    other = monte_carlo(teaching, random_policy, workers=1, **{**MC_KW, "seed": 12})
    assert not other.per_rep.equals(serial_result.per_rep)


# ---------------------------------------------------------------------------------------------
# CI coverage of a known mean
# ---------------------------------------------------------------------------------------------

def _poisson_demand_net(single_stage_spec, lam_per_day: float) -> sim.Network:
    """One buyer facing Poisson demand of unit orders, with so much stock that it never
    reorders: demand_t over the horizon is Poisson(lam x horizon), whatever happens upstream."""
    d = single_stage_spec(lam_per_day, 10.0, 3.0)
    d["nodes"]["buyer"]["stock"]["m"] = {"initial": 1e7,
                                         "policy": {"type": "sS", "s": 1.0, "S": 2.0}}
    return sim.Network.from_dict(d)


def _coverage(net, truth: float, *, batches: int, reps: int, horizon: float, seed0: int):
    hits, widths = 0, []
    for b in range(batches):
        res = monte_carlo(net, None, reps=reps, seed=seed0 + b, workers=1, horizon_days=horizon)
        row = res.summary().set_index(["kpi", "scope"]).loc[("demand_t", "network")]
        assert row["n"] == reps
        hits += row["ci95_low"] <= truth <= row["ci95_high"]
        widths.append(row["ci95_halfwidth"])
    return hits / batches, float(np.mean(widths))


def _t_coverage(n: int) -> float:
    """P(|T_{n-1}| <= 1.96): the exact coverage of the normal-quantile CI for normal data
    (by numerical integration of the t density, to avoid a scipy dependency)."""
    nu = n - 1
    x = np.linspace(0.0, Z95, 20001)
    logc = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    f = np.exp(logc - (nu + 1) / 2 * np.log1p(x * x / nu))
    return float(2.0 * np.sum((f[1:] + f[:-1]) / 2 * np.diff(x)))


def _binomial_ok(hits_frac: float, batches: int, p: float, z: float = 3.5) -> bool:
    sd = math.sqrt(p * (1 - p) / batches)
    return abs(hits_frac - p) <= z * sd + 0.5 / batches


def test_ci_coverage_of_poisson_demand(single_stage_spec):
    """150 batches of 30 replications (seeds 1000..1149): the 95% CI of total demand covers
    lam x horizon in about 94% of batches (the exact coverage of a normal-quantile interval
    from 30 normal values), within a binomial tolerance; the mean half-width matches
    1.96 sqrt(lam H / n)."""
    lam, horizon, n, batches = 2.0, 50.0, 30, 150
    net = _poisson_demand_net(single_stage_spec, lam)
    truth = lam * horizon
    frac, width = _coverage(net, truth, batches=batches, reps=n, horizon=horizon, seed0=1000)
    p = _t_coverage(n)
    assert 0.935 < p < 0.945
    assert _binomial_ok(frac, batches, p), (frac, p)
    assert width == pytest.approx(Z95 * math.sqrt(truth / n), rel=0.06)


@pytest.mark.slow
def test_ci_coverage_many_batches(single_stage_spec):
    """As above with 1000 batches: the coverage is within 3.5 binomial sds of the exact
    value, which separates it from 0.90 and from 0.99."""
    lam, horizon, n, batches = 2.0, 50.0, 30, 1000
    net = _poisson_demand_net(single_stage_spec, lam)
    frac, _ = _coverage(net, lam * horizon, batches=batches, reps=n, horizon=horizon, seed0=5000)
    assert _binomial_ok(frac, batches, _t_coverage(n)), frac


def test_summarise_matches_textbook():
    """summarise: mean, sample sd, se = sd/sqrt(n), CI = mean +- 1.96 se; NaNs ignored."""
    v = np.array([1.0, 2.0, 4.0, np.nan, 7.0])
    s = summarise(v)
    f = v[np.isfinite(v)]
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(f.mean())
    assert s["sd"] == pytest.approx(f.std(ddof=1))
    assert s["se"] == pytest.approx(f.std(ddof=1) / 2)
    assert s["ci95_low"] == pytest.approx(f.mean() - Z95 * s["se"])
    assert s["ci95_high"] == pytest.approx(f.mean() + Z95 * s["se"])
    assert summarise(np.array([np.nan])) == {"n": 0}


# ---------------------------------------------------------------------------------------------
# Common random numbers
# ---------------------------------------------------------------------------------------------

def test_common_random_numbers_reduce_variance(stressed):
    """Stressed teaching network without and with an automotive demand surge, 30 replications:
    paired by replication with the same seed, the variance of the difference of the automotive
    fill rate is a small fraction of var(base) + var(other); with a different seed for the
    second scenario (an unpaired comparison) the ratio is about 1, and its CI is much wider."""
    base = monte_carlo(stressed, None, reps=30, seed=3, workers=1, horizon_days=DAYS)
    surge = monte_carlo(stressed, _surge_scenario(), reps=30, seed=3, workers=1,
                        horizon_days=DAYS)
    indep = monte_carlo(stressed, _surge_scenario(), reps=30, seed=4, workers=1,
                        horizon_days=DAYS)
    col = ("fill_rate", "sector:automotive")
    paired = paired_comparison(base, surge).set_index(["kpi", "scope"]).loc[col]
    unpaired = paired_comparison(base, indep).set_index(["kpi", "scope"]).loc[col]
    assert paired["n"] == unpaired["n"] == 30
    assert paired["difference"] < 0
    assert paired["ci95_high"] < 0
    assert paired["variance_ratio_paired_vs_unpaired"] < 0.25
    assert 0.4 < unpaired["variance_ratio_paired_vs_unpaired"] < 2.5
    assert (paired["ci95_high"] - paired["ci95_low"]) < \
        0.5 * (unpaired["ci95_high"] - unpaired["ci95_low"])
    # the ratio is computed as documented
    a = base.kpi("fill_rate", "sector:automotive").to_numpy()
    b = surge.kpi("fill_rate", "sector:automotive").to_numpy()
    assert paired["variance_ratio_paired_vs_unpaired"] == pytest.approx(
        np.var(b - a, ddof=1) / (np.var(a, ddof=1) + np.var(b, ddof=1)))
    # exogenous demand before the surge is drawn from the same streams: identical totals for
    # the defense sector, whose demand the surge does not touch
    assert (base.kpi("demand_t", "sector:defense") == surge.kpi("demand_t", "sector:defense")).all()


def test_paired_comparison_uses_common_replications(stressed):
    """Only replication indices present in both results are paired; kpis= filters columns."""
    a = monte_carlo(stressed, None, reps=6, seed=3, workers=1, horizon_days=DAYS)
    b = monte_carlo(stressed, _surge_scenario(), reps=4, seed=3, workers=1, horizon_days=DAYS)
    d = paired_comparison(a, b, kpis=["fill_rate"])
    assert set(d["kpi"]) == {"fill_rate"}
    assert (d["n"] == 4).all()
    assert {"base", "other", "difference", "ci95_low", "ci95_high"} <= set(d.columns)


# ---------------------------------------------------------------------------------------------
# Sequential stopping
# ---------------------------------------------------------------------------------------------

TARGET = {"fill_rate|sector:automotive": 0.016}


@pytest.mark.parametrize("workers", [1, 2])
def test_sequential_stopping_reaches_target(stressed, workers):
    """Rounds of 5 replications until the 95% CI half-width of the automotive fill rate is at
    most 0.016: the target is reached before max_reps (after several rounds), reps_used is a
    multiple of 5, the final half-width meets the target and the previous round's did not; the
    same answer for 1 and 2 workers and any chunk size."""
    res = monte_carlo(stressed, None, seed=5, horizon_days=DAYS, target=TARGET, check_every=5,
                      max_reps=60, workers=workers)
    used = res.meta["reps_used"]
    assert res.meta["target_reached"] is True
    assert used % 5 == 0
    assert 10 <= used < 60
    assert res.reps == used
    assert list(res.per_rep.index) == list(range(used))
    col = res.per_rep["fill_rate|sector:automotive"].to_numpy()
    assert summarise(col)["ci95_halfwidth"] <= TARGET["fill_rate|sector:automotive"]
    assert res.meta["target_halfwidths"]["fill_rate|sector:automotive"] == \
        pytest.approx(summarise(col)["ci95_halfwidth"])
    assert summarise(col[:used - 5])["ci95_halfwidth"] > TARGET["fill_rate|sector:automotive"]
    ref = monte_carlo(stressed, None, seed=5, horizon_days=DAYS, target=TARGET, check_every=5,
                      max_reps=60, workers=1, chunk_size=2)
    assert ref.meta["reps_used"] == used
    assert_frame_equal(ref.per_rep, res.per_rep, check_exact=True)


def test_sequential_stopping_unreachable_target(stressed):
    """A target that cannot be met stops at max_reps with target_reached False (and the
    half-widths it got to)."""
    res = monte_carlo(stressed, None, seed=5, horizon_days=DAYS, workers=1, check_every=4,
                      max_reps=8, target={"fill_rate|sector:automotive": 1e-9})
    assert res.meta["target_reached"] is False
    assert res.meta["target_halfwidths"]["fill_rate|sector:automotive"] > 1e-9
    assert res.meta["reps_used"] == 8
    assert res.reps == 8


def test_sequential_stopping_unknown_column(stressed):
    with pytest.raises(ModelError, match="unknown KPI column"):
        monte_carlo(stressed, None, seed=5, horizon_days=DAYS, workers=1, check_every=2,
                    max_reps=4, target={"fill_rate|sector:nope": 0.01})


# ---------------------------------------------------------------------------------------------
# Failing replications are recorded
# ---------------------------------------------------------------------------------------------

def test_failing_replications_are_recorded(teaching, tmp_path):
    """Replications that raise inside the run (a lead-time sampler that fails in some
    replications) are listed in ``failures`` with index, seed, error and traceback; the others
    are kept; meta counts both; a process pool fails the same ones; saving and loading keeps
    them."""
    flaky = _flaky_network(teaching)
    res = monte_carlo(flaky, None, reps=10, seed=0, workers=1, horizon_days=DAYS)
    failed = [f["replication"] for f in res.failures]
    assert 0 < len(failed) < 10
    assert sorted(failed) == failed
    assert set(failed).isdisjoint(res.per_rep.index)
    assert sorted(failed + list(res.per_rep.index)) == list(range(10))
    assert res.meta["failures"] == len(failed)
    assert res.meta["reps_used"] == 10
    for f in res.failures:
        assert f["seed"] == 0
        assert f["error"] == "RuntimeError: flaky lead time"
        assert "Traceback" in f["traceback"]
    # the series hold one row per surviving replication
    assert all(a.shape[0] == res.reps for a in res.series.values())
    # the same replications fail through a process pool
    pooled = monte_carlo(flaky, None, reps=10, seed=0, workers=2, horizon_days=DAYS)
    assert [f["replication"] for f in pooled.failures] == failed
    assert_frame_equal(pooled.per_rep, res.per_rep)
    res.save(tmp_path / "mc", plots=False)
    back = MonteCarloResults.load(tmp_path / "mc")
    assert [f["replication"] for f in back.failures] == failed


def test_escalation_to_licensing_without_review_days_is_rejected():
    """Escalating a ban to licensing without review_days is a ScenarioError when the scenario
    is read (as it is for a control or a regime change), not an error inside the replications
    that draw 'escalate'."""
    try:
        _bad_escalation_scenario()
    except ScenarioError:
        return
    raise AssertionError("Scenario.from_dict accepted an escalation to licensing without "
                         "review_days")


def test_run_chunk_records_failures(teaching):
    """run_chunk (what each worker runs) records every replication that raises, with its
    index, seed and error, and returns no values for them."""
    from sim.experiment import ChunkTask, SharedInputs, run_chunk

    task = ChunkTask(SharedInputs(teaching, sim.Scenario.from_dict({"scenario": {"name": "x"}})), 4,
                 (2, 3, 5), None, -1.0, ())
    out = run_chunk(task)
    assert out["reps"] == []
    assert len(out["values"]) == 0
    assert [f["replication"] for f in out["failures"]] == [2, 3, 5]
    for f in out["failures"]:
        assert f["seed"] == 4
        assert f["error"].startswith("ModelError")
        assert "horizon_days" in f["error"]
    ok = run_chunk(ChunkTask(SharedInputs(teaching, None), 4, (2, 3), None, 60.0, ()))
    assert ok["reps"] == [2, 3]
    assert ok["failures"] == []
    assert ok["values"].shape == (2, len(ok["keys"]))


def test_all_failing_raises_with_first_failure(teaching):
    """When every replication fails, the run fails: a RunFailedError that quotes the first
    failure, not an empty table that looks like a result."""
    d = teaching.to_dict()
    d["lanes"] = [dict(l, lead_time=FlakyLeadTime()) for l in d["lanes"]]

    class AlwaysFails(FlakyLeadTime):
        def _draw(self, rng, n):
            raise RuntimeError("always")

    for lane in d["lanes"]:
        lane["lead_time"] = AlwaysFails()
    with pytest.raises(RunFailedError, match=r"3 of 3 replications failed \(all .*the first, "
                                             r"replication 0: RuntimeError: always"):
        monte_carlo(sim.Network.from_dict(d), None, reps=3, seed=0, workers=1,
                    horizon_days=DAYS)


# ---------------------------------------------------------------------------------------------
# Sweeps: resume, spec check, incomplete folders
# ---------------------------------------------------------------------------------------------

SWEEP_PARAMS = {"nodes.nds_us.initial.ndfeb_magnet": [0, 40],
                "controls.heavy.approval_probability": [0.3, 0.9]}


def _sweep(net, sc, out, **kw):
    args = dict(reps=4, seed=2, workers=1, chunk_size=2, horizon_days=DAYS, plots=False)
    args.update(kw)
    return sweep(net, sc, SWEEP_PARAMS, out_dir=out, **args)


def test_sweep_resume_gives_identical_tables(teaching, random_policy, tmp_path):
    """A sweep with out_dir writes one file per chunk, the tables and manifest.json. Deleting
    some chunks and the final files (an interruption) and rerunning recomputes only the
    missing chunks and gives identical tables; the same sweep without out_dir agrees too."""
    out = tmp_path / "sweep"
    full = _sweep(teaching, random_policy, out)
    chunks = sorted((out / "chunks").glob("*.json"))
    assert len(chunks) == 4 * 2                       # 4 points x 2 chunks of 2 reps
    assert (out / "manifest.json").exists()
    assert len(full.table) == 4 * 4
    assert full.failures == []
    assert list(full.table.columns[:4]) == ["point", *SWEEP_PARAMS, "replication"]
    loaded = SweepResults.load(out)
    assert_frame_equal(loaded.table, full.table, check_dtype=False)

    removed = chunks[1::3]
    kept = [c for c in chunks if c not in removed]
    mtimes = {c: c.stat().st_mtime_ns for c in kept}
    for c in removed:
        c.unlink()
    for p in out.iterdir():
        if p.is_file() and p.name != "sweep_spec.json":
            p.unlink()
    with pytest.raises(ModelError, match="incomplete"):
        SweepResults.load(out)

    resumed = _sweep(teaching, random_policy, out)
    assert_frame_equal(resumed.table, full.table, check_exact=True)
    assert_frame_equal(resumed.summary, full.summary, check_exact=True)
    assert all(c.exists() for c in removed)
    assert {c: c.stat().st_mtime_ns for c in kept} == mtimes     # finished chunks not rerun
    assert_frame_equal(SweepResults.load(out).table, loaded.table, check_exact=True)
    # workers and executor do not matter either
    fresh = _sweep(teaching, random_policy, None, workers=2, chunk_size=2)
    assert_frame_equal(fresh.table, full.table, check_exact=True)


def test_sweep_points_share_replication_streams(teaching, random_policy):
    """Common random numbers across points: demand does not depend on the parameters."""
    res = _sweep(teaching, random_policy, None)
    t = res.table
    dem = t.pivot(index="replication", columns="point", values="demand_t|sector:defense")
    assert (dem.nunique(axis=1) == 1).all()
    fill = t.groupby("controls.heavy.approval_probability")["fill_rate|network"].mean()
    assert fill[0.3] <= fill[0.9]


def test_sweep_refuses_folder_of_another_spec(teaching, random_policy, tmp_path):
    """Rerunning into a folder that holds a different sweep (other seed, reps or parameters)
    is a ModelError naming the folder."""
    out = tmp_path / "sweep"
    _sweep(teaching, random_policy, out, reps=2)
    for kw in ({"reps": 2, "seed": 3}, {"reps": 3}):
        with pytest.raises(ModelError, match="different sweep") as err:
            _sweep(teaching, random_policy, out, **kw)
        assert str(out) in str(err.value)
    with pytest.raises(ModelError, match="different sweep"):
        sweep(teaching, random_policy, {"nodes.nds_us.initial.ndfeb_magnet": [0, 41]}, reps=2,
              seed=2, workers=1, chunk_size=2, horizon_days=DAYS, plots=False, out_dir=out)


def test_sweep_load_refuses_folder_without_manifest(tmp_path):
    (tmp_path / "chunks").mkdir()
    with pytest.raises(ModelError, match="manifest"):
        SweepResults.load(tmp_path)
    with pytest.raises(ModelError, match="manifest"):
        MonteCarloResults.load(tmp_path)


def test_sweep_bad_parameter_is_model_error(teaching, random_policy):
    """An unknown path or an out-of-range value fails before anything runs, naming the path."""
    with pytest.raises(ModelError, match=r"nodes\.nope\.initial\.ndfeb_magnet"):
        sweep(teaching, random_policy, {"nodes.nope.initial.ndfeb_magnet": [1]}, reps=1,
              workers=1, plots=False)
    with pytest.raises(ModelError, match="approval_probability"):
        sweep(teaching, random_policy, {"controls.heavy.approval_probability": [0.5, 1.5]},
              reps=1, workers=1, plots=False)


def test_sweep_bad_horizon_is_model_error(teaching):
    """Bug: an invalid horizon should raise ModelError before anything runs (as monte_carlo's
    reps/seed/workers checks do), not give an empty sweep table with one failure per
    replication."""
    with pytest.raises(ModelError, match="horizon_days"):
        sweep(teaching, None, {"nodes.nds_us.initial.ndfeb_magnet": [0, 40]}, reps=2,
              workers=1, horizon_days=-5, plots=False)


# ---------------------------------------------------------------------------------------------
# Bounded memory
# ---------------------------------------------------------------------------------------------

def test_series_memory_is_linear_and_weekly(stressed):
    """The reduced series take reps x weeks x series x 4 bytes (float32 on the weekly grid):
    40 replications take 4 times what 10 take. No daily series or Run objects are kept."""
    small = monte_carlo(stressed, None, reps=10, seed=1, workers=1, horizon_days=DAYS)
    big = monte_carlo(stressed, None, reps=40, seed=1, workers=1, horizon_days=DAYS,
                      chunk_size=7)
    n_series = len(small.series)
    # fill rate, backorders, net inventory x (2 sectors + the civil group)
    assert n_series == 3 * 3
    for res, reps in ((small, 10), (big, 40)):
        assert res.series_nbytes() == reps * WEEKS * n_series * 4
        for arr in res.series.values():
            assert arr.dtype == np.float32
            assert arr.shape == (reps, WEEKS)
    assert big.series_nbytes() == 4 * small.series_nbytes()
    # the first 10 replications of the big run are the small run
    for k in small.series:
        np.testing.assert_array_equal(big.series[k][:10], small.series[k])
    # nothing else grows like a daily series: the pickled result is dominated by the KPI table
    per_rep_bytes = big.per_rep.to_numpy().nbytes
    assert len(pickle.dumps(big)) < 3 * (per_rep_bytes + big.series_nbytes()) + 200_000
    assert not any(isinstance(v, sim.Run) for v in vars(big).values())
    tracked = monte_carlo(stressed, None, reps=10, seed=1, workers=1, horizon_days=DAYS,
                          track=[("nds_us", "ndfeb_magnet")])
    assert tracked.series_nbytes() == 10 * WEEKS * (n_series + 1) * 4


def test_weekly_bands_shape(stressed):
    res = monte_carlo(stressed, None, reps=5, seed=1, workers=1, horizon_days=DAYS)
    b = res.bands("fill_rate|sector:automotive")
    assert len(b) == WEEKS
    assert list(b.columns) == ["date", "q05", "q25", "q50", "q75", "q95", "mean"]
    assert str(b["date"].iloc[0])[:10] == "2025-01-07"
    assert (b["q05"] <= b["q50"]).all()
    assert (b["q50"] <= b["q95"]).all()


# ---------------------------------------------------------------------------------------------
# Command line, end to end
# ---------------------------------------------------------------------------------------------

def _table(folder, stem):
    for suffix, read in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        if (folder / f"{stem}{suffix}").exists():
            return read(folder / f"{stem}{suffix}")
    raise AssertionError(f"no {stem}.parquet or {stem}.csv in {folder}")


def _pngs(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def test_cli_mc(run_cli, tmp_path):
    """``mc`` writes manifest (listing the files), replications, summary, bands, series and
    PNG figures; the replications equal an in-process monte_carlo."""
    out = tmp_path / "mc"
    proc = run_cli("mc", "--network", "teaching", "--reps", "4", "--workers", "1", "--days",
                   "365", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "sector:defense" in proc.stdout
    assert str(out) in proc.stdout
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "monte_carlo"
    assert man["network"] == "teaching"
    assert man["reps_used"] == 4
    assert man["failures"] == 0
    assert man["seed"] == 0
    assert "command" in man
    assert "mc" in man["command"]
    reps = _table(out, "replications")
    summ = _table(out, "summary")
    bands = _table(out, "bands")
    assert list(reps.columns) == list(sim.tables.SCHEMA) == list(summ.columns)
    assert sorted(reps["replication"].unique()) == [0, 1, 2, 3]
    assert {"mean", "ci95_low", "ci95_high", "n"} <= set(summ["statistic"])
    assert set(bands["kpi"] + "|" + bands["scope"]) >= {"fill_rate|sector:defense",
                                                         "fill_rate|sector:automotive"}
    pngs = _pngs(out)
    # the baseline fills every order in every replication: the fill-rate fan chart and the KPI
    # distributions would draw constants, so they are skipped with a message
    assert "fan_fill_rate.png" not in pngs
    assert "kpi_distributions.png" not in pngs
    assert "not drawn" in proc.stderr
    assert "fan_net_inventory.png" in pngs
    assert set(pngs) <= set(man["files"])
    for name in man["files"]:
        assert (out / name).exists(), name
    ref = monte_carlo("teaching", None, reps=4, seed=0, workers=1, horizon_days=365)
    got = sim.tables.wide(sim.tables.coerce(reps))
    assert_frame_equal(got[ref.per_rep.columns], ref.per_rep, check_dtype=False,
                       check_index_type=False, check_names=False)


def test_cli_sweep(run_cli, tmp_path):
    """``sweep`` over the teaching stockpile's initial stock writes the sweep tables, figures
    and manifest; rerunning into the same folder resumes (same table)."""
    out = tmp_path / "sweep"
    args = ("sweep", "--network", "teaching", "--param", "nodes.nds_us.initial.ndfeb_magnet=0,40",
            "--reps", "3", "--workers", "1", "--days", "365", "--out", out)
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "2 points x 3 reps" in proc.stdout
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "sweep"
    assert man["reps"] == 3
    assert man["points"] == [{"nodes.nds_us.initial.ndfeb_magnet": 0},
                             {"nodes.nds_us.initial.ndfeb_magnet": 40}]
    table = _table(out, "sweep")
    assert sorted(table["point"].unique()) == [0, 1]
    assert len(table.drop_duplicates(["point", "replication"])) == 6
    # the baseline fills every order at both points: lines of a constant are not drawn
    assert not any(n.startswith("sweep_lines_") for n in _pngs(out))
    assert "not drawn" in proc.stderr
    res = SweepResults.load(out)
    assert res.param_names == ["nodes.nds_us.initial.ndfeb_magnet"]
    proc2 = run_cli(*args, "--no-plots")
    assert proc2.returncode == 0, proc2.stderr
    assert_frame_equal(_table(out, "sweep"), table)


def test_cli_compare(run_cli, write_toml, tmp_path):
    """``compare`` of two scenario files for the teaching network writes one Monte Carlo folder
    per scenario, the paired differences and a manifest; the surge lowers the fill rate."""
    calm = write_toml({"scenario": {"name": "calm", "start": "2025-01-01"}}, "calm.toml")
    tight = write_toml({
        "scenario": {"name": "tight", "start": "2025-01-01", "shortage_after": "2025-03-01"},
        "controls": {"dy": {"exporter": "CN", "elements": ["Dy", "Tb"], "start": "2025-03-01",
                            "regime": "licensing", "review_days": 45,
                            "approval_probability": 0.5}}}, "tight.toml")
    out = tmp_path / "cmp"
    proc = run_cli("compare", "--network", "teaching", "--scenarios", calm, tight, "--reps", "4",
                   "--workers", "1", "--days", "365", "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "paired differences vs calm" in proc.stdout
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "compare"
    assert man["scenarios"] == ["calm", "tight"]
    for name in ("calm", "tight"):
        assert (out / name / "manifest.json").exists()
        assert MonteCarloResults.load(out / name).reps == 4
    diffs = sim.tables.read_table(out / "paired_differences", wide_diffs=True)
    row = diffs[(diffs["kpi"] == "fill_rate") & (diffs["scope"] == "network")].iloc[0]
    assert row["base"] == "calm"
    assert row["other"] == "tight"
    assert row["n"] == 4
    assert row["difference"] < 0


@pytest.mark.parametrize("param", [
    "nodes.nds_us.initial.ndfeb_magnet=-5",          # negative stock
    "nodes.nowhere.initial.ndfeb_magnet=1",          # unknown node
    "bogus.path=1",                                  # unknown top-level key
    "nodes.nds_us.initial.ndfeb_magnet",             # no values
])
def test_cli_bad_param_exits_2(run_cli, tmp_path, param):
    """A bad --param exits with status 2 and one line on stderr, no traceback, and writes no
    results."""
    out = tmp_path / "bad"
    proc = run_cli("sweep", "--network", "teaching", "--param", param, "--reps", "2",
                   "--workers", "1", "--days", "60", "--out", out)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    assert not (out / "manifest.json").exists()
