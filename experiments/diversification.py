"""Which diversification plan protects users best, per dollar, and when does the leading one fail?

Covers five shipped plans (``networks/plans/``): ``status-quo`` (the reference),
``stockpile-release`` (a strategic reserve with release rules), ``allied-capacity`` (the
announced non-China projects on their schedules), ``allied-capacity-delayed`` (the same, two
years late) and ``substitution`` (heavy-rare-earth-free magnets and thrifting at the 2010-2011
response rates), on the default network ``rare_earth_2025`` (2025-01-01 to 2029-01-01), in
three parts:

1. **Comparison** (:func:`sim.study.compare_plans`): every plan under ``truce-holds``,
   ``truce-expires`` and ``truce-uncertain`` on common random numbers: fill rates and unmet
   tonnes per plan and scenario, paired differences against the status quo with 95% CIs, and
   cost-effectiveness (dollars per tonne of unmet demand avoided, per defense-fill point).
2. **Robustness** (:func:`sim.study.robustness`): every plan over a Latin-hypercube ensemble of
   ``truce-uncertain`` (renewal probability, April-regime and escalation approval rates,
   demand factor; :data:`sim.study.DEFAULT_UNCERTAINTIES`): regret against the best plan in
   each member for the civil fill rate, and the share of members in which each plan meets the
   defense-fill target (99%). The *leading plan* is the one of least maximum regret (then
   least mean regret).
3. **Scenario discovery** (:mod:`sim.ema`, EMA Workbench's PRIM): the leading plan over a
   Latin hypercube of the same uncertainties plus the escalation's review time and the plan's
   project delay; the cases of interest are the experiments in which its civil fill rate falls
   below ``--fail-below`` (default: the worst fifth of the experiments, whose threshold is
   printed). PRIM's box says which combination of uncertainties puts the plan there.

Every cell, member and experiment runs the same replication indices (common random numbers).

Run from the repository root::

    python experiments/diversification.py              # full study (see the constants below)
    python experiments/diversification.py --quick      # smoke test (a few replications)

Tables, manifests and figures go to ``--out`` (default ``results/diversification``;
``results/diversification-quick`` with ``--quick``): ``comparison/`` and ``robustness/`` (as
:mod:`sim.study` saves them, with their figures) and ``prim/`` (experiments, the box and its
figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

import numpy as np
import pandas as pd

from sim.cli import add_figure_options, figure_output
from sim.engine import DEFAULT_START
from sim.results import write_atomic
from sim.study import DEFAULT_UNCERTAINTIES, compare_plans, regret_table, robustness

# ---- parameters ------------------------------------------------------------------------------
NETWORK = "rare_earth_2025"
PLANS = ["status-quo", "stockpile-release", "allied-capacity", "allied-capacity-delayed",
         "substitution"]
SCENARIOS = ["truce-holds", "truce-expires", "truce-uncertain"]
ENSEMBLE_BASE = "truce-uncertain"
RANDOM_SEED = 20251110
REPS = 100                  # replications per (plan, scenario) cell of the comparison
ENSEMBLE_MEMBERS = 20       # Latin-hypercube members of the robustness ensemble
ENSEMBLE_REPS = 10          # replications per (plan, member)
PRIM_EXPERIMENTS = 200      # experiments of the scenario discovery
PRIM_REPS = 5               # replications per experiment (their mean is the outcome)
QUICK = {"reps": 2, "members": 3, "ensemble_reps": 1, "experiments": 30, "prim_reps": 1}
WORKERS = None              # None: all available cores
DEFENSE_TARGET = 0.99       # defense fill-rate target of the robustness table
ROBUST_KPI = "fill_rate|civil"
FAIL_QUANTILE = 0.2         # default cases of interest: the worst fifth of the experiments
PRIM_THRESHOLD = 0.8        # PRIM's density threshold (the box chosen: greatest coverage at it)
# scenario discovery: the robustness ensemble's uncertainties (names for EMA: identifiers),
# the escalation's review time and the leading plan's project delay. Ranges are assumptions:
# the review times span one to six months (DOMAIN.md C2: 45 working days by law, months in
# practice); delays up to two years are the spread of announced projects' slips (DOMAIN.md D).
EXTRA_UNCERTAINTIES = {
    "escalation_review_days": ("truce.escalation.review_days", 30, 180),
    "project_delay_days": ("plan.delay_days", 0, 730),
}
OUT_DIR = Path("results/diversification")
LABELS = {"truce_renewal_probability": "truce renewed at expiry (probability)",
          "controls_apr_2025_approval_probability": "April 2025 regime: approval probability",
          "controls_apr_2025_changes_0_approval_probability":
              "April regime from June 2025: approval probability",
          "truce_escalation_approval_probability": "escalation: approval probability",
          "demand_factor": "demand factor (x 2025 demand)",
          "escalation_review_days": "escalation: licence review (days)",
          "project_delay_days": "plan's projects delayed (days)"}


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per plan and scenario (default {REPS})")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help="worker processes (default: all cores)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT_DIR})")
    p.add_argument("--seed", type=int, default=RANDOM_SEED,
                   help=f"root seed (default {RANDOM_SEED})")
    p.add_argument("--plans", nargs="+", default=PLANS, help="plans (default: the five shipped)")
    p.add_argument("--members", type=int, default=None,
                   help=f"members of the robustness ensemble (default {ENSEMBLE_MEMBERS})")
    p.add_argument("--experiments", type=int, default=None,
                   help=f"experiments of the scenario discovery (default {PRIM_EXPERIMENTS})")
    p.add_argument("--fail-below", type=float, default=None,
                   help="civil fill rate below which an experiment is a case of interest "
                        f"(default: the worst {FAIL_QUANTILE:.0%} of the experiments)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK['reps']} replications per cell, "
                        f"{QUICK['members']} ensemble members, {QUICK['experiments']} PRIM "
                        "experiments")
    add_figure_options(p)              # --figure-format, --dpi, --figure-size
    return p.parse_args(argv)


def ema_name(path: str) -> str:
    """An identifier for an uncertainty path (EMA Workbench names must be identifiers)."""
    return "".join(c if c.isalnum() else "_" for c in path.replace("->", "_to_")).strip("_")


def discovery_space(network: sim.Network, base: sim.Scenario) -> tuple[sim.Scenario, dict]:
    """The scenario and the uncertainties (name -> (paths, low, high)) of the scenario
    discovery: the robustness ensemble's paths, with its demand factor as one factor on a
    demand surge per sector over the whole run (added to *base*, factor 1 as written), plus
    :data:`EXTRA_UNCERTAINTIES`."""
    space: dict[str, tuple] = {}
    doc = base.to_dict()
    for path, (low, high) in DEFAULT_UNCERTAINTIES.items():
        if path == "demand.factor":
            sectors = sorted({n.sector for n in network.nodes.values() if n.demand and n.sector})
            start = base.start or DEFAULT_START
            end = base.end or dt.date(9999, 1, 1)       # open: the run ends first
            surges = list(doc.get("demand_surges", []))
            first = len(surges)
            surges += [{"sector": s, "factor": 1.0, "start": start, "end": end,
                        "source": "assumption: demand factor sampled by the experiment"}
                       for s in sectors]
            doc["demand_surges"] = surges
            space["demand_factor"] = ([f"demand_surges.{first + i}.factor"
                                       for i in range(len(sectors))], low, high)
        else:
            space[ema_name(path)] = (path, low, high)
    space.update(EXTRA_UNCERTAINTIES)
    return sim.Scenario.from_dict(doc), space


def comparison_table(study) -> pd.DataFrame:
    """One row per plan and scenario: mean fill rates (defense, civil), unmet tonnes and the
    paired difference of the civil fill rate and of unmet tonnes against the reference with
    95% CIs, the plan's cost over the run and dollars per tonne of unmet demand avoided."""
    summ = study.summary()
    summ = summ[summ["statistic"] == "mean"]
    diffs = study.differences()
    ce = study.cost_effectiveness()
    rows = []
    for s in study.scenarios:
        for p in study.plans:
            def mean(kpi, scope):
                v = summ[(summ["plan"] == p) & (summ["scenario"] == s) & (summ["kpi"] == kpi)
                         & (summ["scope"] == scope)]["value"]
                return float(v.iloc[0]) if len(v) else np.nan

            def diff(kpi, scope, stat):
                v = diffs[(diffs["plan"] == p) & (diffs["scenario"] == s) & (diffs["kpi"] == kpi)
                          & (diffs["scope"] == scope) & (diffs["statistic"] == stat)]["value"]
                return float(v.iloc[0]) if len(v) else (0.0 if p == study.reference else np.nan)

            def cost(kpi, stat):
                v = ce[(ce["plan"] == p) & (ce["scenario"] == s) & (ce["kpi"] == kpi)
                       & (ce["statistic"] == stat)]["value"]
                return float(v.iloc[0]) if len(v) else np.nan

            unmet = mean("demand_t", "network") - mean("filled_t", "network")
            rows.append({
                "scenario": s, "plan": p,
                "defense_fill": mean("fill_rate", "sector:defense"),
                "civil_fill": mean("fill_rate", "civil"),
                "unmet_t": unmet,
                "civil_fill_diff_points": 100 * diff("fill_rate", "civil", "difference"),
                "civil_fill_diff_ci_low": 100 * diff("fill_rate", "civil", "ci95_low"),
                "civil_fill_diff_ci_high": 100 * diff("fill_rate", "civil", "ci95_high"),
                "unmet_avoided_t": cost("unmet_avoided_t", "mean"),
                "unmet_avoided_ci_low": cost("unmet_avoided_t", "ci95_low"),
                "unmet_avoided_ci_high": cost("unmet_avoided_t", "ci95_high"),
                "cost_usd": study.costs[(p, s)]["total_usd"],
                "usd_per_t_avoided": cost("cost_per_t_unmet_avoided_usd", "mean"),
                "usd_per_t_ci_low": cost("cost_per_t_unmet_avoided_usd", "ci95_low"),
                "usd_per_t_ci_high": cost("cost_per_t_unmet_avoided_usd", "ci95_high"),
            })
    return pd.DataFrame(rows)


def _money(v: float) -> str:
    if not np.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "n/a")
    for unit, f in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= f:
            return f"${v / f:,.1f}{unit}"
    return f"${v:,.0f}"


def _signed(v: float, digits: int) -> str:
    """*v* with a sign, rounded, without a negative zero."""
    return f"{round(v, digits) + 0.0:+.{digits}f}"


def _tonnes(v: float) -> str:
    return f"{round(v) + 0:,.0f}"


def print_comparison(table: pd.DataFrame, reference: str, reps: int, seed: int) -> None:
    print(f"\nComparison: plans x scenarios, {reps} paired replications each (seed {seed}); "
          f"differences vs {reference}, 95% CIs")
    print(f"{'scenario':16} {'plan':24} {'defense':>7} {'civil':>6} {'unmet t':>9} "
          f"{'civil diff pts':>22} {'unmet avoided t':>27} {'cost':>9} {'$/t avoided':>11}")
    for _, r in table.iterrows():
        ref = r["plan"] == reference
        dpts = "" if ref else (f"{_signed(r['civil_fill_diff_points'], 2)} "
                               f"[{_signed(r['civil_fill_diff_ci_low'], 2)}, "
                               f"{_signed(r['civil_fill_diff_ci_high'], 2)}]")
        av = "" if ref else (f"{_tonnes(r['unmet_avoided_t'])} "
                             f"[{_tonnes(r['unmet_avoided_ci_low'])}, "
                             f"{_tonnes(r['unmet_avoided_ci_high'])}]")
        # a ratio is shown only where the benefit's CI lies above zero (sim.study)
        per = "" if ref else ("n/s" if not np.isfinite(r["usd_per_t_ci_high"])
                              else _money(r["usd_per_t_avoided"]))
        print(f"{r['scenario']:16} {r['plan']:24} {100 * r['defense_fill']:6.2f}% "
              f"{100 * r['civil_fill']:5.2f}% {r['unmet_t']:9,.0f} {dpts:>22} {av:>27} "
              f"{_money(r['cost_usd']):>9} {per:>11}")
    print("(fill rates over 2025-2028; unmet t = demand not filled on arrival, all users; "
          "cost = the plan's capital and yearly dollars inside the run; $/t avoided = cost / "
          "unmet tonnes avoided, n/s where the benefit is not significant: its 95% CI "
          "reaches zero)")


def robustness_tables(rob) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The civil-fill regret table (:func:`sim.study.robustness`'s own) and the defense-fill
    table with the share of members meeting :data:`DEFENSE_TARGET` (same members, same runs)."""
    col = "fill_rate|sector:defense"
    plans = list(rob.values.columns)
    members = list(rob.values.index)
    values = pd.DataFrame({p: [rob.per_member[(p, m)][col] for m in members] for p in plans},
                          index=members)
    _, defense = regret_table(values, target=DEFENSE_TARGET)
    return rob.table, defense


def print_robustness(civil: pd.DataFrame, defense: pd.DataFrame, members: int, reps: int) -> None:
    print(f"\nRobustness over {members} members of the {ENSEMBLE_BASE} ensemble ({reps} "
          "replications each): regret in civil fill (points) vs the best plan per member; "
          f"share of members meeting defense fill >= {DEFENSE_TARGET:.0%}")
    d = defense.set_index("plan")
    print(f"{'plan':24} {'max regret':>10} {'mean regret':>11} {'best in':>8} "
          f"{'civil q05':>9} {'q50':>6} {'defense target':>14} {'defense q05':>11}")
    for _, r in civil.iterrows():
        p = r["plan"]
        print(f"{p:24} {100 * r['max_regret']:10.2f} {100 * r['mean_regret']:11.2f} "
              f"{r['best_share']:8.0%} {100 * r['q05']:8.2f}% {100 * r['q50']:5.2f}% "
              f"{d.loc[p, 'target_share']:14.0%} {100 * d.loc[p, 'q05']:10.2f}%")


def discover(network, base, plan: str, args, experiments_n: int, reps: int, out: Path):
    """PRIM on the leading plan: returns (limits, fails share, threshold, experiments table)."""
    import sim.ema as se
    from sim.plots_ema import prim_box_plot

    ema_workbench = se.require_ema()

    scenario, space = discovery_space(network, base)
    model = se.ema_model(network, scenario, uncertainties=space, plans=[plan],
                         outcomes={"civil_fill": "fill_rate|civil",
                                   "defense_fill": "fill_rate|sector:defense",
                                   "backordered_t": "backordered_t|network"},
                         reps=reps, seed=args.seed)
    design = se.sample_scenarios(model, experiments_n, seed=args.seed)
    # EMA's own evaluators run the experiments (workers None: all cores); every experiment
    # draws from the same root seed, so the numbers do not depend on them
    evaluator = ema_workbench.SequentialEvaluator(model) if args.workers == 1 else \
        ema_workbench.MultiprocessingEvaluator(model, n_processes=args.workers)
    with evaluator as ev:
        experiments, outcomes = ev.perform_experiments(scenarios=design)
    civil = np.asarray(outcomes["civil_fill"], dtype=float)
    threshold = args.fail_below if args.fail_below is not None else \
        float(np.quantile(civil, FAIL_QUANTILE))
    fails = civil < threshold if args.fail_below is not None else civil <= threshold
    names = list(space)
    table = experiments[names].copy()
    for k, v in outcomes.items():
        table[k] = v
    table["case_of_interest"] = fails
    prim = out / "prim"
    prim.mkdir(parents=True, exist_ok=True)
    table.to_csv(prim / "experiments.csv", index_label="experiment")
    limits = None
    if fails.any() and not fails.all():
        box, limits = se.prim_box(experiments, outcomes, fails, columns=names,
                                  threshold=PRIM_THRESHOLD)
        out_limits = limits.copy()
        for k, v in limits.attrs.items():
            out_limits[k] = v
        out_limits.to_csv(prim / "prim_box.csv", index_label="uncertainty")
        prim_box_plot(table[names], fails, limits, prim / "prim_box.png",
                      trajectory=box.peeling_trajectory, labels=LABELS,
                      title=f"When does {plan} fail? Civil fill rate "
                            f"{'<' if args.fail_below is not None else '<='} "
                            f"{100 * threshold:.2f}% (PRIM)",
                      caption=f"{experiments_n} experiments (Latin hypercube) x {reps} "
                              f"replications, seed {args.seed}, {ENSEMBLE_BASE}")
    meta = {"kind": "scenario_discovery", "plan": plan, "network": network.name,
            "scenario": scenario.name, "seed": args.seed, "experiments": experiments_n,
            "reps": reps, "uncertainties": {k: list(v[:1]) + list(v[1:]) for k, v in
                                            space.items()},
            "case_of_interest": f"civil fill {'<' if args.fail_below is not None else '<='} "
                                f"{threshold}", "prim_threshold": PRIM_THRESHOLD,
            "files": ["experiments.csv"] + (["prim_box.csv"] if limits is not None else [])}
    write_atomic(prim / "manifest.json", json.dumps(meta, indent=2, default=str))
    return limits, float(fails.mean()), threshold, table


def main(argv=None) -> int:
    """Run the study; 0 on success, 2 on a bad input (a one-line error on stderr)."""
    args = parse_args(argv)
    with figure_output(args):
        return run(args)


def run(args) -> int:
    """The three parts of the study with the parsed *args* (see :func:`main`)."""
    q = args.quick
    reps = args.reps or (QUICK["reps"] if q else REPS)
    members = args.members or (QUICK["members"] if q else ENSEMBLE_MEMBERS)
    ens_reps = QUICK["ensemble_reps"] if q else ENSEMBLE_REPS
    n_exp = args.experiments or (QUICK["experiments"] if q else PRIM_EXPERIMENTS)
    prim_reps = QUICK["prim_reps"] if q else PRIM_REPS
    out = args.out or (OUT_DIR.with_name(OUT_DIR.name + "-quick") if q else OUT_DIR)
    if q and args.out is None and out.exists():
        shutil.rmtree(out)          # a smoke test starts afresh
    t0 = time.perf_counter()
    try:
        network = sim.load_network(NETWORK)
        base = sim.load_scenario(ENSEMBLE_BASE)
        print(f"{len(args.plans)} plans x {len(SCENARIOS)} scenarios on {NETWORK}, {reps} "
              f"replications each, seed {args.seed}")
        study = compare_plans(network, args.plans, SCENARIOS, reps=reps, seed=args.seed,
                              workers=args.workers, progress=False)
        study.save(out / "comparison")
        table = comparison_table(study)
        table.to_csv(out / "comparison_table.csv", index=False)
        print_comparison(table, study.reference, reps, args.seed)

        rob = robustness(network, args.plans, base=ENSEMBLE_BASE, samples=members,
                         design_seed=args.seed, reps=ens_reps, seed=args.seed, kpi=ROBUST_KPI,
                         target=None, kpis=(ROBUST_KPI, "fill_rate|sector:defense",
                                            "fill_rate|network", "backordered_t|network"),
                         workers=args.workers, progress=False)
        rob.save(out / "robustness")
        civil, defense = robustness_tables(rob)
        civil.to_csv(out / "robustness_civil.csv", index=False)
        defense.to_csv(out / "robustness_defense.csv", index=False)
        print_robustness(civil, defense, members, ens_reps)
        leading = str(civil["plan"].iloc[0])
        print(f"\nleading plan (least maximum regret in civil fill): {leading}")

        limits, share, threshold, _ = discover(network, base, leading, args, n_exp, prim_reps,
                                               out)
    except sim.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rule = (f"civil fill < {100 * threshold:.2f}%" if args.fail_below is not None else
            f"civil fill <= {100 * threshold:.2f}% (the worst {FAIL_QUANTILE:.0%})")
    print(f"\nScenario discovery for {leading}: {n_exp} experiments x {prim_reps} replications, "
          f"cases of interest: {rule}, {share:.0%} of the experiments")
    if limits is None:
        print("  no PRIM box: every experiment or none is a case of interest")
    else:
        for name, r in limits.iterrows():
            print(f"  {name:40} [{r['min']:.4g}, {r['max']:.4g}]")
        a = limits.attrs
        print(f"  coverage {a['coverage']:.0%}, density {a['density']:.0%}, mass {a['mass']:.0%}")
    written = _figures(out)
    print(f"\nwrote {out}/ in {time.perf_counter() - t0:.0f} s; figures:")
    for p in written:
        print(f"  {p}")
    return 0


def _figures(out: Path) -> list[Path]:
    """The plan-study figures (drawn from the saved tables) and the PRIM figure."""
    written: list[Path] = []
    try:
        from sim.plots_study import draw_folder
    except ImportError:             # the plan-study figures are not in this version
        draw_folder = None
    if draw_folder is not None:
        for sub in ("comparison", "robustness"):
            written += draw_folder(out / sub)
    written += [p for p in sorted((out / "prim").glob("prim_box.*"))
                if p.suffix in (".png", ".pdf", ".svg")]
    return [Path(p) for p in written]


if __name__ == "__main__":
    raise SystemExit(main())
