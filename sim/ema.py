"""The simulator as an EMA Workbench model: uncertainties, levers and outcomes.

`EMA Workbench <https://emaworkbench.readthedocs.io>`_ (an optional extra:
``pip install rare-earth-sim[ema]``) is the usual toolkit of exploratory modelling:
experiment designs, scenario discovery (PRIM, CART), global sensitivity and many-objective
robust optimisation. :func:`ema_model` wraps a network and a scenario as an
``ema_workbench.Model`` so that all of it works on the simulator directly::

    from ema_workbench import Policy, perform_experiments
    import sim.ema

    plans = ["status-quo", "stockpile-release"]
    model = sim.ema.ema_model("rare_earth_2025", "truce-uncertain", reps=10, plans=plans)
    experiments, outcomes = perform_experiments(
        model, scenarios=sim.ema.sample_scenarios(model, 200, seed=1),
        policies=[Policy(p, plan=p) for p in plans])
    fails = outcomes["fill_rate_automotive"] < 0.95
    box, limits = sim.ema.prim_box(experiments, outcomes, fails)   # ema_workbench's PRIM

(:func:`prim_box` runs ``ema_workbench.analysis.prim.Prim`` with integer columns as floats:
with pandas 3 the workbench's pasting step fails on an integer column.)

* **Uncertainties** are parameters of the world, each bound to one or more sweep-style paths
  (:mod:`sim.sweep`: ``truce.renewal_probability``, ``truce.escalation.approval_probability``,
  ``controls.apr_2025.review_days``, ``nodes.<id>.initial.<material>``, ...). Several paths
  under one name all take the same value (a demand factor shared by several sectors' surges).
* **Levers** are the decision maker's choices: the plan (a categorical lever over plan names,
  :mod:`sim.plans`) and numeric parameters, again as paths (a safety stock level, a reserve's
  size), so a lever can be searched by ``optimize`` and ``robust_optimize``.
* **Outcomes** are KPI means over the replications of one experiment: fill rate of every demand
  sector, backordered tonnes, and the plan's cost over the run (``plan.cost``).

One experiment applies its plan first (:func:`sim.plans.apply_plan`), then the parameter
values (:func:`sim.sweep.apply_params`, validated like a file), then runs *reps* replications
with :func:`sim.monte_carlo` in the calling process. Every experiment uses the same root seed
and replication indices, so experiments differ by their inputs only (common random numbers),
and a parallel EMA evaluator gives the same numbers as a sequential one.

Names of uncertainties, levers and outcomes are Python identifiers (EMA Workbench 3 requires
it); paths stay the simulator's own.
"""

from __future__ import annotations

import datetime as _dt
import keyword
import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import MAX_SEED, ModelError, check_int
from .experiment import monte_carlo
from .network import Network, load_network
from .scenario import Scenario, resolve_scenario
from .sweep import apply_params

__all__ = ["ema_model", "Param", "SimulatorFunction", "DEFAULT_UNCERTAINTIES", "PLAN_COST",
           "default_outcomes", "plan_with", "prim_box", "require_ema", "sample_scenarios"]

#: Uncertainties of the truce scenarios (``truce-uncertain`` and the scenarios extending
#: ``truce-holds``) on the shipped networks: name -> (path, low, high). The ranges are
#: assumptions spanning the outcomes argued in DOMAIN.md section C, not estimates: a truce
#: never to always renewed, an escalation from a ban (approval 0) to no refusals, and its
#: licence reviews from one to six months (a fixed review time replaces the file's triangular
#: one).
DEFAULT_UNCERTAINTIES: dict[str, tuple] = {
    "truce_renewal_probability": ("truce.renewal_probability", 0.0, 1.0),
    "escalation_approval_probability": ("truce.escalation.approval_probability", 0.0, 1.0),
    "escalation_review_days": ("truce.escalation.review_days", 30, 180),
}

#: Outcome name of a plan's total cost (capital and yearly, over the run), in dollars.
PLAN_COST = "plan_cost_usd"


def require_ema():
    """Import and return the ``ema_workbench`` package, or raise :class:`ModelError` saying how
    to install it (it is the optional extra ``ema``)."""
    try:
        with warnings.catch_warnings():
            # the workbench warns at import about optional parallel back ends (ipyparallel, MPI)
            warnings.simplefilter("ignore", UserWarning)
            import ema_workbench
    except ImportError:
        raise ModelError("EMA Workbench is not installed (pip install 'rare-earth-sim[ema]')",
                         field="ema_workbench") from None
    return ema_workbench


def _identifier(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ModelError(f"must be a Python identifier (letters, digits, underscores), got "
                         f"{name!r}", field=what)
    return name


@dataclass(frozen=True)
class Param:
    """One EMA parameter: a *name* bound to sweep-style *paths*, with a range (*low*, *high*;
    integers when both are integers) or a list of *values* (categorical).

    Built from the short forms that :func:`ema_model` accepts: ``(path, low, high)``,
    ``(path, [v1, v2, ...])`` or ``([path1, path2], low, high)``.
    """

    name: str
    paths: tuple[str, ...]
    low: float | None = None
    high: float | None = None
    values: tuple | None = None

    @classmethod
    def from_spec(cls, name: str, spec: Any, what: str) -> "Param":
        """The parameter *name* described by *spec* (see the class docstring); *what* names the
        argument in errors (``uncertainties`` or ``levers``)."""
        if isinstance(spec, Param):
            return spec
        where = f"{what}.{name}"
        _identifier(name, what)
        if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
            raise ModelError("give (path, low, high) or (path, [values])", field=where)
        paths = (spec[0],) if isinstance(spec[0], str) else tuple(spec[0]) \
            if isinstance(spec[0], (list, tuple)) else ()
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise ModelError(f"the path must be a dotted path or a list of them, got {spec[0]!r}",
                             field=where)
        if len(spec) == 2:
            values = spec[1]
            if not isinstance(values, (list, tuple)) or len(values) < 1:
                raise ModelError("categorical values must be a non-empty list", field=where)
            return cls(name, paths, values=tuple(values))
        low, high = spec[1], spec[2]
        for v in (low, high):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ModelError(f"the range must be two finite numbers, got {low!r}, {high!r}",
                                 field=where)
        if not low < high:
            raise ModelError(f"low must be below high, got {low!r}, {high!r}", field=where)
        return cls(name, paths, low, high)

    @property
    def integer(self) -> bool:
        """True when the range is integral (both ends integers): sampled as integers."""
        return self.values is None and all(isinstance(v, numbers.Integral)
                                           for v in (self.low, self.high))

    def to_ema(self):
        """The ``ema_workbench`` parameter: Categorical, Integer or Real."""
        ema = require_ema()
        if self.values is not None:
            return ema.CategoricalParameter(self.name, list(self.values))
        if self.integer:
            return ema.IntegerParameter(self.name, int(self.low), int(self.high))
        return ema.RealParameter(self.name, float(self.low), float(self.high))

    def assign(self, value: Any) -> dict[str, Any]:
        """The path -> value entries that setting this parameter to *value* makes."""
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = float(value)
        return {p: value for p in self.paths}


def plan_with(plan, params: Mapping[str, Any]):
    """*plan* with plan parameters set, validated as a plan file (:func:`sim.plans.load_plan`).

    Paths (the ``plan.`` prefix is optional):

    * ``plan.delay_days``: every lever of the plan starts this many days later than in the
      plan as given (a plan that is already delayed is delayed further), the usual way to make
      the announced projects' delays an uncertainty;
    * ``plan.levers.<lever id>.<field>[.<field>...]``: a field of one lever's table, e.g.
      ``plan.levers.ndpr-reserve.target_t`` or ``plan.levers.vulcan.lag_days``.

    A path naming a lever the plan does not have is skipped: with a categorical plan lever, a
    numeric parameter of one plan's lever means nothing for the other plans.
    """
    from .plans import Plan, load_plan

    plan = load_plan(plan)
    doc = plan.to_dict()
    ids = [lv.get("id") for lv in doc["levers"]]
    changed = False
    for path, value in params.items():
        parts = path.split(".")
        if parts[0] == "plan":
            parts = parts[1:]
        where = f"parameter '{path}'"
        if parts == ["delay_days"]:
            doc["plan"]["delay_days"] = value
            doc["plan"]["delay_source"] = "assumption: an experiment's sampled project delay"
            changed = True
        elif len(parts) >= 3 and parts[0] == "levers":
            if parts[1] not in ids:
                continue
            node = doc["levers"][ids.index(parts[1])]
            for key in parts[2:-1]:
                if not isinstance(node.get(key), dict):
                    raise ModelError(f"lever '{parts[1]}' of plan '{plan.name}' has no table "
                                     f"{key!r}", where=where)
                node = node[key]
            if parts[-1] not in node:
                raise ModelError(f"lever '{parts[1]}' of plan '{plan.name}' has no field "
                                 f"{parts[-1]!r} (fields: {sorted(node)})", where=where)
            node[parts[-1]] = value
            changed = True
        else:
            raise ModelError("a plan parameter is plan.delay_days or "
                             "plan.levers.<lever id>.<field>", where=where)
    if not changed:
        return plan
    if "+" in plan.name:
        raise ModelError(f"plan '{plan.name}' is a composition: give its parameters to a plan "
                         "file that extends the parts", where=f"plan '{plan.name}'")
    try:
        return Plan.from_dict(doc, file=plan.file)
    except ModelError as exc:
        raise ModelError(f"{exc}", where=f"plan parameters {dict(params)}") from None


def default_outcomes(network: Network) -> dict[str, str]:
    """Outcome name -> KPI column (``kpi|scope``) of *network*: the fill rate of each demand
    sector (``fill_rate_<sector>``), the network's fill rate and its backordered tonnes."""
    out = {"fill_rate": "fill_rate|network", "backordered_t": "backordered_t|network"}
    sectors = sorted({n.sector for n in network.nodes.values() if n.demand and n.sector})
    for s in sectors:
        name = "fill_rate_" + "".join(c if c.isalnum() else "_" for c in s)
        out[name] = f"fill_rate|sector:{s}"
    return out


class SimulatorFunction:
    """The callable an ``ema_workbench.Model`` runs: ``f(**values) -> {outcome: number}``.

    Built by :func:`ema_model` (see there for the arguments). It is picklable (its inputs are
    plain data and validated objects), so EMA's multiprocessing evaluator can ship it.

    *runner*, when given, replaces the simulation: ``runner(network, scenario, reps=, seed=,
    start=, horizon_days=)`` returns a mapping of KPI columns (``kpi|scope``) to numbers. It
    receives the network and scenario after the plan and the parameters were applied, so it
    sees exactly what the simulator would (the tests plant a known failure region this way);
    it must be a module-level function for a parallel evaluator.
    """

    def __init__(self, network: Network, scenario: Scenario, params: Sequence[Param],
                 plans: Mapping[str, Any], outcomes: Mapping[str, str], *, reps: int, seed: int,
                 start=None, horizon_days: float | None = None,
                 runner: Callable[..., Mapping[str, float]] | None = None) -> None:
        self.network = network
        self.scenario = scenario
        self.params = {p.name: p for p in params}
        self.plans = dict(plans)
        self.outcomes = dict(outcomes)
        self.reps = reps
        self.seed = seed
        self.start = start
        self.horizon_days = horizon_days
        self.runner = runner

    def inputs(self, **values) -> tuple[Network, Scenario, Any]:
        """The network, scenario and plan (or None) of one experiment: the plan applied to the
        base network and scenario, then the parameter values set."""
        unknown = sorted(set(values) - set(self.params) - {"plan"})
        if unknown:
            raise ModelError(f"unknown parameter(s) {unknown} (known: "
                             f"{sorted(self.params) + (['plan'] if self.plans else [])})",
                             field="ema experiment")
        net, sc, plan = self.network, self.scenario, None
        assigned: dict[str, Any] = {}
        for name, value in values.items():
            if name != "plan":
                assigned.update(self.params[name].assign(value))
        in_plan = {k: v for k, v in assigned.items() if k.split(".", 1)[0] == "plan"}
        world = {k: v for k, v in assigned.items() if k not in in_plan}
        if self.plans:
            key = values.get("plan", next(iter(self.plans)))
            if key not in self.plans:
                raise ModelError(f"no plan {key!r} (plans: {sorted(self.plans)})",
                                 field="ema experiment: plan")
            plan = self.plans[key]
            if in_plan:
                plan = plan_with(plan, in_plan)
            from .plans import apply_plan
            net, sc = apply_plan(plan, net, sc, start=self.start)
        elif in_plan:
            raise ModelError(f"plan parameters {sorted(in_plan)} need plans (give plans=...)",
                             field="ema experiment")
        if world:
            net, sc = apply_params(net, sc, world)
        return net, sc, plan

    def window(self, network: Network, scenario: Scenario) -> tuple[_dt.date, _dt.date]:
        """First and last day (exclusive) of a run of *network* under *scenario*."""
        from .engine import Model

        m = Model(network, scenario, seed=0, start=self.start, horizon_days=self.horizon_days)
        return m.start, m.start + _dt.timedelta(days=int(math.ceil(m.horizon)))

    def __call__(self, **values) -> dict[str, float]:
        """Run one experiment; return every outcome (KPI means over the replications)."""
        net, sc, plan = self.inputs(**values)
        if self.runner is None:
            # KPIs only (no weekly series): an experiment's outcomes are KPI means
            res = monte_carlo(net, sc, reps=self.reps, seed=self.seed, workers=1,
                              start=self.start, horizon_days=self.horizon_days, progress=False,
                              series=False)
            wanted = [c for c in self.outcomes.values() if c in res.per_rep.columns]
            means = res.per_rep[wanted].to_numpy(dtype=float).mean(axis=0)
            kpis = dict(zip(wanted, means.tolist()))
        else:
            kpis = dict(self.runner(net, sc, reps=self.reps, seed=self.seed, start=self.start,
                                    horizon_days=self.horizon_days))
        out: dict[str, float] = {}
        for name, col in self.outcomes.items():
            if col == PLAN_COST:
                if plan is None:
                    out[name] = 0.0
                else:
                    first, last = self.window(net, sc)
                    out[name] = float(plan.cost(first, last)["total_usd"])
                continue
            if col not in kpis:
                raise ModelError(f"the run has no KPI column {col!r} (columns look like "
                                 "'fill_rate|sector:defense')", field=f"outcomes.{name}")
            out[name] = kpis[col]
        return out


def ema_model(network="rare_earth_2025", scenario="truce-uncertain", *,
              uncertainties: Mapping[str, Any] | None = None,
              levers: Mapping[str, Any] | None = None,
              plans: Sequence[Any] | Mapping[str, Any] | None = None,
              outcomes: Mapping[str, str] | None = None,
              reps: int = 10, seed: int = 0, start=None, horizon_days: float | None = None,
              runner: Callable[..., Mapping[str, float]] | None = None,
              name: str = "RareEarthSim"):
    """The simulator as an ``ema_workbench.Model`` (see the module docstring).

    Parameters
    ----------
    network, scenario:
        As for :func:`sim.monte_carlo` (names, paths or objects).
    uncertainties:
        name -> ``(path, low, high)``, ``(path, [values])`` or ``([paths], low, high)``
        (:class:`Param`); default :data:`DEFAULT_UNCERTAINTIES`.
    levers:
        Numeric or categorical decision parameters, in the same form (paths into the network
        and scenario, applied after the plan, so they may name a plan's new nodes).
    plans:
        Plan names, paths or :class:`sim.plans.Plan` objects (or a mapping label -> plan):
        with two or more, a categorical lever ``plan``; with one, that plan is applied in every
        experiment. Each is loaded and applied once here, so a bad plan fails before any run.
    outcomes:
        name -> KPI column (``kpi|scope``) or :data:`PLAN_COST`; default
        :func:`default_outcomes`, plus ``plan_cost_usd`` when plans are given.
    reps, seed, start, horizon_days:
        Replications per experiment (their KPI means are the outcomes), the root seed shared by
        every experiment (common random numbers), and the run window.
    runner:
        Replaces the simulation (see :class:`SimulatorFunction`).
    name:
        The model's name (letters and digits only, as EMA requires); EMA labels results
        with it.

    Returns
    -------
    ema_workbench.Model
        With ``uncertainties``, ``levers`` and ``outcomes`` set (all outcomes are
        ``ScalarOutcome``: fill rates to maximise, tonnes and dollars to minimise) and the
        :class:`SimulatorFunction` as ``model.function``.
    """
    ema = require_ema()
    if not isinstance(name, str) or not name.isalnum() or not name.isascii():
        raise ModelError(f"must be letters and digits only (EMA's rule), got {name!r}",
                         field="name")
    check_int(reps, "reps", 1, maximum=1_000_000)
    check_int(seed, "seed", 0, maximum=MAX_SEED)
    if runner is not None and not callable(runner):
        raise ModelError(f"must be callable, got {runner!r}", field="runner")
    net = load_network(network)
    sc = resolve_scenario(scenario)
    sc.check_network(net)
    unc_specs = DEFAULT_UNCERTAINTIES if uncertainties is None else uncertainties
    lever_specs = levers or {}
    for what, specs in (("uncertainties", unc_specs), ("levers", lever_specs)):
        if not isinstance(specs, Mapping):
            raise ModelError(f"must be a mapping of name -> (path, low, high), got {specs!r}",
                             field=what)
    unc = [Param.from_spec(k, v, "uncertainties") for k, v in unc_specs.items()]
    lev = [Param.from_spec(k, v, "levers") for k, v in lever_specs.items()]
    names = [p.name for p in unc + lev]
    dup = sorted({n for n in names if names.count(n) > 1} | ({"plan"} & set(names)))
    if dup:
        raise ModelError(f"names used twice (or 'plan', kept for the plan lever): {dup}",
                         field="uncertainties/levers")
    plan_objs = _load_plans(plans)
    for p in unc + lev:
        for path in p.paths:
            parts = path.split(".")
            if parts[0] == "plan" and len(parts) > 3 and parts[1] == "levers" and not any(
                    parts[2] in pl.lever_ids for pl in plan_objs.values()):
                raise ModelError(f"no plan has a lever {parts[2]!r} (plans: "
                                 f"{sorted(plan_objs) or 'none given'})",
                                 field=f"{'levers' if p in lev else 'uncertainties'}.{p.name}")
    if outcomes is None:
        outcomes = default_outcomes(net)
        if plan_objs:
            outcomes[PLAN_COST] = PLAN_COST
    elif not isinstance(outcomes, Mapping) or not outcomes:
        raise ModelError(f"must be a non-empty mapping of name -> 'kpi|scope', got {outcomes!r}",
                         field="outcomes")
    for k, v in outcomes.items():
        _identifier(k, "outcomes")
        if not isinstance(v, str) or (v != PLAN_COST and "|" not in v):
            raise ModelError(f"must be a KPI column 'kpi|scope' or {PLAN_COST!r}, got {v!r}",
                             field=f"outcomes.{k}")
    fn = SimulatorFunction(net, sc, unc + lev, plan_objs, outcomes, reps=reps, seed=seed,
                           start=start, horizon_days=horizon_days, runner=runner)
    # every plan, and every parameter at both ends of its range, is applied once up front: a
    # wrong path or an out-of-range end fails here, naming it, not in experiment 137
    for label in plan_objs or [None]:
        base = {} if label is None else {"plan": label}
        fn.inputs(**base)
        for what, group in (("uncertainties", unc), ("levers", lev)):
            for p in group:
                for v in (p.values if p.values is not None else (p.low, p.high)):
                    try:
                        fn.inputs(**base, **{p.name: v})
                    except ModelError as exc:
                        at = f" under plan {label!r}" if label is not None else ""
                        raise ModelError(f"{exc}", field=f"{what}.{p.name} = {v!r}{at}") from None
    model = ema.Model(name, function=fn)
    model.uncertainties = [p.to_ema() for p in unc]
    model_levers = [p.to_ema() for p in lev]
    if len(plan_objs) > 1:
        model_levers.insert(0, ema.CategoricalParameter("plan", list(plan_objs)))
    model.levers = model_levers
    model.outcomes = [ema.ScalarOutcome(k, kind=_direction(ema, v)) for k, v in outcomes.items()]
    return model


def _direction(ema, column: str):
    """Fill rates, service levels and licence approvals are maximised; the rest minimised."""
    kpi = column.split("|", 1)[0]
    good = kpi in {"fill_rate", "order_fill_rate", "period_service_level", "filled_t",
                   "first_shortage_day", "first_shortage_after_day"}
    return ema.ScalarOutcome.MAXIMIZE if good else ema.ScalarOutcome.MINIMIZE


def _load_plans(plans) -> dict[str, Any]:
    """label -> Plan for :func:`ema_model`'s *plans* argument (empty for None)."""
    if plans is None:
        return {}
    if isinstance(plans, (str, bytes)) or not isinstance(plans, (Sequence, Mapping)):
        raise ModelError(f"must be a list of plans (names, paths or Plan objects), got {plans!r}",
                         field="plans")
    from .plans import load_plan

    items = plans.items() if isinstance(plans, Mapping) else [(None, p) for p in plans]
    out: dict[str, Any] = {}
    for label, spec in items:
        plan = load_plan(spec)
        label = str(label if label is not None else plan.name)
        if label in out:
            raise ModelError(f"plan {label!r} given twice", field="plans")
        out[label] = plan
    if not out:
        raise ModelError("give at least one plan (or leave plans out)", field="plans")
    return out


def sample_scenarios(model, n: int, *, seed: int = 0) -> list:
    """*n* EMA scenarios over *model*'s uncertainties from a Latin hypercube of the simulator's
    own (:func:`sim.sweep.design_points`), so that a design is reproducible from *seed*
    (EMA's samplers draw from NumPy's global random state). Integer ranges take each integer
    of ``[low, high]`` with equal weight; categorical ones each value.

    Pass the list as ``perform_experiments(model, scenarios=...)``.
    """
    from .sweep import design_points

    ema = require_ema()
    check_int(n, "n", 1, maximum=1_000_000)
    check_int(seed, "seed", 0, maximum=MAX_SEED)
    params = list(model.uncertainties)
    if not params:
        raise ModelError("the model has no uncertainties to sample", field="model")
    spans = {}
    for p in params:
        if isinstance(p, ema.CategoricalParameter):
            spans[p.name] = [0.0, float(len(p.categories))]
        elif isinstance(p, ema.IntegerParameter):
            spans[p.name] = [float(p.lower_bound), float(p.upper_bound) + 1.0]
        else:
            spans[p.name] = [float(p.lower_bound), float(p.upper_bound)]
    out = []
    for point in design_points(spans, "lhs", n, seed):
        values = {}
        for p in params:
            u = point[p.name]
            if isinstance(p, ema.CategoricalParameter):
                cats = list(p.categories)
                values[p.name] = cats[min(int(u), len(cats) - 1)].value
            elif isinstance(p, ema.IntegerParameter):
                values[p.name] = min(int(math.floor(u)), int(p.upper_bound))
            else:
                values[p.name] = u
        out.append(ema.Scenario(**values))
    return out


def prim_box(experiments, outcomes: Mapping[str, Any], fails, *,
             columns: Sequence[str] | None = None, threshold: float = 0.8,
             peel_alpha: float = 0.05):
    """A PRIM box (``ema_workbench.analysis.prim``) of the experiments in which *fails* holds.

    Parameters
    ----------
    experiments, outcomes:
        As returned by ``ema_workbench.perform_experiments``.
    fails:
        A boolean array (one per experiment) or a function ``outcomes -> boolean array``, e.g.
        ``lambda o: o["fill_rate_defense"] < 0.99``.
    columns:
        The experiment columns PRIM may restrict (default: every column but EMA's bookkeeping
        ``scenario``, ``policy`` and ``model``).
    threshold, peel_alpha:
        PRIM's density threshold and peeling fraction.

    Returns
    -------
    (box, limits)
        The ``PrimBox`` PRIM found (inspect it, ``box.inspect()``, ``box.show_tradeoff()``) and
        its limits as a DataFrame (one row per restricted column, ``min`` and ``max``), with
        ``coverage``, ``density`` and ``mass`` of the box in ``limits.attrs``.
    """
    import numpy as np

    require_ema()
    from ema_workbench.analysis import prim

    y = fails(outcomes) if callable(fails) else fails
    y = np.asarray(y, dtype=bool)
    if y.shape != (len(experiments),):
        raise ModelError(f"needs one value per experiment ({len(experiments)}), got shape "
                         f"{y.shape}", field="fails")
    if not y.any() or y.all():
        raise ModelError(f"{'no' if not y.any() else 'every'} experiment is a case of interest: "
                         "there is no region to find", field="fails")
    cols = list(columns) if columns is not None else \
        [c for c in experiments.columns if c not in ("scenario", "policy", "model")]
    missing = sorted(set(cols) - set(experiments.columns))
    if missing:
        raise ModelError(f"not columns of the experiments: {missing}", field="columns")
    x = experiments[cols].copy()
    # integer columns as floats: PRIM's pasting writes midpoints into the box limits, which
    # pandas 3 refuses for an integer column (TypeError "Invalid value '61.5' for dtype int64")
    for c in cols:
        if x[c].dtype.kind in "iu":
            x[c] = x[c].astype(float)
    with warnings.catch_warnings():
        # pandas deprecations inside the library are its maintainers' to fix, not the user's
        warnings.filterwarnings("ignore", module=r"ema_workbench(\..*)?")
        box = prim.Prim(x, y, threshold=threshold, peel_alpha=peel_alpha).find_box()
    # PRIM's trajectory ends on its densest, narrowest box; the usual choice for a report is
    # the box of greatest coverage among those at or above the density threshold
    traj = box.peeling_trajectory
    ok = traj.index[traj["density"] >= threshold]
    if len(ok):
        box.select(int(traj.loc[ok].sort_values(["coverage", "density"]).index[-1]))
    limits = box.box_lim
    restricted = [c for c in cols if _restricted(limits, x, c)]
    table = limits[restricted].T.rename(columns={0: "min", 1: "max"})
    table.attrs.update(coverage=float(box.coverage), density=float(box.density),
                       mass=float(box.mass))
    return box, table


def _restricted(limits, x, column: str) -> bool:
    """True when the box limits *column* to less than its sampled range."""
    lo, hi = limits[column].iloc[0], limits[column].iloc[1]
    if isinstance(lo, (set, frozenset)):
        return set(lo) != set(x[column].unique())
    return lo > x[column].min() or hi < x[column].max()
