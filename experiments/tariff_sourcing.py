"""Do the April-May 2025 US tariffs on China move US magnet imports, and by how much?

Covers: the cost-aware sourcing layer (``networks/scenarios/layers/cost-aware-sourcing.toml``,
:mod:`sim.sourcing`) switched on against the network's fixed lane shares, on the same
scenario and replication streams (common random numbers). Reports, per month of 2025, the US
imports of magnets (sintered NdFeB, high-temperature NdFeB and SmCo, tonnes dispatched across
the border, as customs count them: :func:`sim.flows.trade_flows`) from China and from Japan,
with the paired difference and its 95% CI. The tariffs are the scenario's own: the 20% IEEPA
fentanyl tariff from 4 March 2025, the 125% reciprocal escalation from 10 April to the Geneva
deal of 14 May 2025, then 10% (DOMAIN.md C2, C3), and the 2.1% MFN duty on magnets.

The response's strength (``elasticity``) is an assumption (see the layer file); ``--elasticity``
overrides it.

Run from the repository root::

    python experiments/tariff_sourcing.py             # REPS paired replications
    python experiments/tariff_sourcing.py --quick     # smoke test

The table is printed and written to ``--out`` (default ``results/tariff_sourcing``) as
``us_magnet_imports.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

import numpy as np
import pandas as pd

from sim import flows
from sim.experiment import Z95, monte_carlo
from sim.scenario import with_sourcing

# ---- parameters ------------------------------------------------------------------------------
NETWORK = "rare_earth_2025"
SCENARIO = "truce-holds"
LAYER = "cost-aware-sourcing"
RANDOM_SEED = 0
REPS = 30
QUICK_REPS = 3
DAYS = 365                          # 2025
MAGNETS = ["ndfeb_magnet", "ndfeb_hre_magnet", "smco_magnet"]
EXPORTERS = ["CN", "JP"]
OUT_DIR = Path("results/tariff_sourcing")


def monthly_us_imports(res) -> dict[str, np.ndarray]:
    """Per exporter, the (replications x months) tonnes of magnets it shipped to the US."""
    groups = res.trade["groups"]
    tonnes = res.trade["tonnes"].astype(float)
    out = {}
    for exporter in EXPORTERS:
        rows = [i for i, (e, imp, m) in enumerate(groups)
                if e == exporter and imp == "US" and m in MAGNETS]
        out[exporter] = tonnes[:, rows, :].sum(axis=1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=REPS)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_REPS} replications")
    ap.add_argument("--elasticity", type=float, default=None,
                    help="override the layer's elasticity (beta >= 0)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    reps = QUICK_REPS if args.quick else args.reps
    over = {} if args.elasticity is None else {"elasticity": args.elasticity}
    on = with_sourcing(SCENARIO, LAYER, **over)
    runs = {}
    for tag, sc in (("fixed", SCENARIO), ("cost_aware", on)):
        res = monte_carlo(NETWORK, sc, reps=reps, seed=RANDOM_SEED, workers=args.workers,
                          horizon_days=DAYS, trade_flows=True)
        runs[tag] = monthly_us_imports(res)
        months = flows.month_labels(pd.Timestamp(res.meta["start"]).date(), DAYS)
    rows = []
    for exporter in EXPORTERS:
        a, b = runs["fixed"][exporter], runs["cost_aware"][exporter]
        d = b - a
        half = Z95 * d.std(axis=0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan * d[0]
        for k, month in enumerate(months):
            rows.append({"exporter": exporter, "importer": "US", "month": month,
                         "fixed_shares_t": a[:, k].mean(), "cost_aware_t": b[:, k].mean(),
                         "difference_t": d[:, k].mean(), "ci95_halfwidth_t": half[k],
                         "reps": len(d)})
    table = pd.DataFrame(rows)
    elasticity = on.sourcing.elasticity
    print(f"US magnet imports (t/month), {SCENARIO}, {reps} paired replications, "
          f"fixed shares vs cost-aware sourcing (elasticity {elasticity:g}, an assumption)")
    print(table.to_string(index=False, float_format=lambda x: f"{x:8.1f}"))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "us_magnet_imports.csv", index=False)
    print(f"\nwrote {args.out / 'us_magnet_imports.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
