"""What happens to defense and civil users when the truce of 10 November 2025 expires?

Covers: the probability that the truce is renewed at its expiry on 2026-11-10
(``truce.renewal_probability``; the rest is split between reinstating and escalating the
suspended October 2025 controls in the file's 0.35 : 0.15 proportion) crossed with the size of
the US National Defense Stockpile of high-temperature NdFeB magnets
(``nodes.nds_us.initial.ndfeb_hre_magnet``: 0, 0.5x, 1x, 2x and 4x the file's 36.4 t). For each
point, for defense users (scope ``sector:defense``) and civil users (scope ``civil``:
automotive, electronics and wind): the volume fill rate over the run, the tonnes backordered,
the days in stockout (``stockout_days``: days with unmet backlog), the probability of a
shortage after the expiry (``shortage_after_occurred``), the time from the expiry to the first
shortage after it (``first_shortage_after_day`` minus the expiry day, restricted to the end of
the horizon, 2028-12-31), and the probability that the users had already been short before
the expiry (``first_shortage_day``, counted from the start of the run, before the expiry): a
user short since 2025 is short again at the first order after the expiry, so for such users
the time to the first shortage after the expiry says little and the tonnes and days say more.
Every point runs the same replication streams (common random numbers), so differences between
points are not sampling noise of the demand, lead-time or licence draws.

Scenario: ``truce-uncertain`` on the default network ``rare_earth_2025`` (2025-01-01 to
2029-01-01). Note that the stockpile reorders within its (s, S) band (35.5 t, 37.2 t), so the
initial stock sets how much it holds above or below that band at the start, not the band.

Run from the repository root::

    python experiments/truce_expiry.py                 # REPS replications per point
    python experiments/truce_expiry.py --quick         # smoke test (2 replications per point)

Results (sweep tables, manifest, figures, ``truce_expiry_summary.csv``) go to ``--out``
(default ``results/truce_expiry``; ``results/truce_expiry-quick`` with ``--quick``). A rerun
with the same settings resumes an interrupted sweep; other settings need another ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

import numpy as np
import pandas as pd

from sim import plots
from sim.cli import add_figure_options, figure_output
from sim.cli_args import record_figures
from sim.experiment import summarise
from sim.sweep import sweep

# ---- parameters ------------------------------------------------------------------------------
NETWORK = "rare_earth_2025"
SCENARIO = "truce-uncertain"
RANDOM_SEED = 20251110
REPS = 40                           # replications per point (25 points)
QUICK_REPS = 2
WORKERS = None                      # None: all available cores
RENEWAL_PROBABILITIES = [0.0, 0.25, 0.5, 0.75, 1.0]
STOCKPILE_NODE = "nds_us"
STOCKPILE_MATERIAL = "ndfeb_hre_magnet"
STOCKPILE_MULTIPLIERS = [0.0, 0.5, 1.0, 2.0, 4.0]     # x the network file's initial stock
OUT_DIR = Path("results/truce_expiry")
GROUP_SCOPES = {"defense": "sector:defense", "civil": "civil"}   # user group -> KPI scope

P_RENEW = "truce.renewal_probability"
P_STOCK = f"nodes.{STOCKPILE_NODE}.initial.{STOCKPILE_MATERIAL}"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per point (default {REPS})")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help="worker processes (default: all cores)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT_DIR})")
    p.add_argument("--seed", type=int, default=RANDOM_SEED,
                   help=f"root seed (default {RANDOM_SEED})")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_REPS} replications per point, 3 x 3 points")
    add_figure_options(p)              # --figure-format, --dpi, --figure-size
    return p.parse_args(argv)


def file_stock(network: sim.Network) -> float:
    """Initial stock of the stockpile's magnets in the network file."""
    return float(network.to_dict()["nodes"][STOCKPILE_NODE]["stock"][STOCKPILE_MATERIAL]["initial"])


def add_group_columns(table: pd.DataFrame, name: str, scope: str, expiry_day: float,
                      horizon: float) -> list[str]:
    """Add columns for a group of users (KPI scope *scope*) to a sweep table: days from the
    expiry to the first shortage after it (the end of the horizon when there is none: a
    restricted time) and 1.0 where a shortage happened before the expiry. Returns the new
    columns."""
    if f"first_shortage_after_day|{scope}" not in table.columns:
        raise KeyError(f"no KPI scope {scope!r} in the results")
    after = table[f"first_shortage_after_day|{scope}"]
    occurred = table[f"shortage_after_occurred|{scope}"]
    before = (table[f"shortage_occurred|{scope}"] > 0) & \
        (table[f"first_shortage_day|{scope}"] < expiry_day)
    cols = {f"days_to_first_shortage_after_expiry|{name}":
                np.where(occurred > 0, after, horizon) - expiry_day,
            f"short_before_expiry|{name}": before.astype(float)}
    for k, v in cols.items():
        table[k] = np.asarray(v, dtype=float)
    return list(cols)


def point_table(table: pd.DataFrame, horizon_after_expiry: float) -> pd.DataFrame:
    """One row per point: means (and 95% CIs of the fill rates) of each group's columns."""
    rows = []
    for (p, s), g in table.groupby([P_RENEW, P_STOCK], sort=True):
        row = {"renewal_probability": p, "stockpile_t": s}
        for grp, scope in GROUP_SCOPES.items():
            f = summarise(g[f"fill_rate|{scope}"].to_numpy())
            row[f"{grp}_fill_rate"] = f["mean"]
            row[f"{grp}_fill_rate_ci95"] = f["ci95_halfwidth"]
            row[f"{grp}_backordered_t"] = float(g[f"backordered_t|{scope}"].mean())
            row[f"{grp}_stockout_days"] = float(g[f"stockout_days|{scope}"].mean())
            row[f"{grp}_p_short_before_expiry"] = float(g[f"short_before_expiry|{grp}"].mean())
            row[f"{grp}_p_shortage_after_expiry"] = float(
                g[f"shortage_after_occurred|{scope}"].mean())
            d = g[f"days_to_first_shortage_after_expiry|{grp}"].to_numpy()
            row[f"{grp}_median_days_to_shortage"] = (float(np.median(d))
                                                      if np.median(d) < horizon_after_expiry
                                                      else np.inf)
            row[f"{grp}_restricted_mean_days_to_shortage"] = float(d.mean())
        row["reps"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)


def print_table(df: pd.DataFrame, horizon_after_expiry: float, expiry: str) -> None:
    def days(v):
        return f">{horizon_after_expiry:.0f}" if not np.isfinite(v) else f"{v:.0f}"
    head = (f"{'fill %':>14} {'backord. t':>10} {'stockout d':>10} {'P(before)':>9} "
            f"{'P(after)':>8} {'days':>5}")
    print(f"{'':15} | {'defense':^62} | {'civil':^62}")
    print(f"{'renew p':>7} {'stock t':>7} | {head} | {head}")
    for _, r in df.iterrows():
        cells = []
        for grp in GROUP_SCOPES:
            cells.append(f"{100 * r[f'{grp}_fill_rate']:6.2f} "
                         f"+-{100 * r[f'{grp}_fill_rate_ci95']:5.2f} "
                         f"{r[f'{grp}_backordered_t']:10.1f} {r[f'{grp}_stockout_days']:10.0f} "
                         f"{r[f'{grp}_p_short_before_expiry']:9.2f} "
                         f"{r[f'{grp}_p_shortage_after_expiry']:8.2f} "
                         f"{days(r[f'{grp}_median_days_to_shortage']):>5}")
        print(f"{r['renewal_probability']:7.2f} {r['stockpile_t']:7.1f} | {cells[0]} | {cells[1]}")
    print(f"(means over replications; +- : 95% CI half-width of the fill rate over the run;\n"
          f" stockout d: days with unmet backlog; P(before): share of replications with a "
          f"shortage before the expiry\n on {expiry}; P(after): with a shortage after it; days: "
          f"median days from the expiry to the first\n shortage after it, '>N' when most "
          f"replications have none by the end of the horizon)")


def figures(res, out: Path) -> list[Path]:
    """Heatmaps of the pooled KPIs over (renewal probability, stockpile) and lines against the
    renewal probability, one line per stockpile size."""
    written = []
    for grp, scope in GROUP_SCOPES.items():
        for col in (f"fill_rate|{scope}", f"backordered_t|{scope}", f"stockout_days|{scope}",
                    f"shortage_after_occurred|{scope}",
                    f"days_to_first_shortage_after_expiry|{grp}"):
            kpi = col.split("|")[0]
            written.append(plots.sweep_heatmap(res, col, P_RENEW, P_STOCK,
                                               out / f"truce_heatmap_{kpi}_{grp}.png"))
        written.append(plots.sweep_lines(res, f"fill_rate|{scope}", P_RENEW,
                                         out / f"truce_lines_fill_rate_{grp}.png", by=P_STOCK))
    return [w for w in written if w is not None]          # figures of constants are skipped


def main(argv=None) -> int:
    args = parse_args(argv)
    with figure_output(args):
        return run(args)


def run(args) -> int:
    reps = args.reps or (QUICK_REPS if args.quick else REPS)
    out = args.out or (OUT_DIR.with_name(OUT_DIR.name + "-quick") if args.quick else OUT_DIR)
    if args.quick and args.out is None and (out / "sweep_spec.json").exists():
        shutil.rmtree(out)          # a smoke test starts afresh (inputs may have changed)
    network = sim.load_network(NETWORK)
    scenario = sim.load_scenario(SCENARIO)
    base_stock = file_stock(network)
    renewals = [0.0, 0.5, 1.0] if args.quick else RENEWAL_PROBABILITIES
    multipliers = [0.0, 1.0, 4.0] if args.quick else STOCKPILE_MULTIPLIERS
    params = {P_RENEW: renewals, P_STOCK: [round(m * base_stock, 6) for m in multipliers]}
    print(f"{SCENARIO} on {NETWORK}: {len(renewals)} x {len(multipliers)} points x {reps} "
          f"replications, seed {args.seed} (stockpile in the file: {base_stock:g} t)")
    try:
        res = sweep(network, scenario, params, reps=reps, seed=args.seed, out_dir=out,
                    workers=args.workers)
    except sim.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # the sweep's own figures, drawn after it saved its tables and listed in its manifest
    record_figures(out, plots.plot_sweep(res, out))
    start = scenario.start
    expiry_day = float((scenario.truce.expiry - start).days)
    horizon = float((scenario.end - start).days)
    table = res.table.copy()
    # the after-event KPIs count from the scenario's shortage_after: the expiry here
    event = table["shortage_after_event_day|policy"].unique()
    if list(event) != [expiry_day]:
        raise SystemExit(f"error: the scenario's shortage_after (day {event}) is not the truce "
                         f"expiry (day {expiry_day:g})")
    for grp, scope in GROUP_SCOPES.items():
        add_group_columns(table, grp, scope, expiry_day, horizon)
    res2 = dataclasses.replace(res, table=table)
    summary = point_table(table, horizon - expiry_day)
    summary.to_csv(out / "truce_expiry_summary.csv", index=False)
    written = figures(res2, out)
    print()
    print_table(summary, horizon - expiry_day, scenario.truce.expiry.isoformat())
    if res.failures:
        print(f"\n{len(res.failures)} replication(s) FAILED, e.g. {res.failures[0]['error']}")
    print(f"\nwrote {out}/ (sweep tables, manifest.json, truce_expiry_summary.csv) and figures:")
    for p in sorted({Path(p).name for p in written} | {p.name for p in out.glob("sweep_*.png")}):
        print(f"  {out / p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
