"""Calibration tornado: how much each assumption of the default network and the policy-history
scenario moves the headline outputs.

One assumption at a time is set to the low and to the high end of its plausible range (the
table ASSUMPTIONS below, each with its source or reason), everything else at its base value;
every setting runs the same replication indices (common random numbers), so each difference
from the base is a paired difference with a 95% CI. Headline outputs:

* from the backtest (experiments/backtest_2025.py, 2025-01-01 to 2026-03-31, scenario
  ``truce-holds``): China's magnet exports in Q2 2025 relative to Q1 2025, in total and to the
  US, and the weeks from 4 April 2025 to the first non-Chinese automotive shortage (restricted
  to the replay: no shortage counts as the end of the replay);
* the truce-expiry difference: automotive and defense fill rate (2025-2028) of
  ``truce-expires`` minus ``truce-holds``, paired by replication.

Outputs under ``--out`` (default ``results/calibration_tornado``): ``tornado.csv`` (one row per
assumption, level and output: value, difference from base, its 95% CI half-width),
``tornado.md`` (the same as a Markdown table, for networks/CALIBRATION.md) and ``tornado.png``.

Run from the repository root::

    python experiments/calibration_tornado.py            # 20 replications per setting
    python experiments/calibration_tornado.py --quick    # 4 replications (about a minute)
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backtest_2025 as bt  # noqa: E402

NETWORK = "rare_earth_2025"
HISTORY, HOLDS, EXPIRES = "truce-holds", "truce-holds", "truce-expires"
REPS, QUICK_REPS = 20, 4
RANDOM_SEED = 20251110
OUT_DIR = Path("results/calibration_tornado")
OUTPUTS = {
    "exports_q2_vs_q1": "China magnet exports, Q2/Q1 2025",
    "us_exports_q2_vs_q1": "China magnet exports to US, Q2/Q1 2025",
    "weeks_to_first_auto_shortage": "weeks 4 Apr 2025 -> first non-CN auto shortage",
    "truce_expiry_auto_fill": "truce expiry: d automotive fill (pp)",
    "truce_expiry_defense_fill": "truce expiry: d defense fill (pp)",
}


# ---- how an assumption is changed ------------------------------------------------------------
# Each setter changes the network dict (net) or the scenario dict (sc) in place; each getter
# reads the base value from them, so the table shows the values of the files as they are.
JAPAN_CHANGE = {   # the January 2026 Japan regime (scenario layer "japan-2026" where it exists)
    "destinations": ["JP"], "review_days": {"dist": "triangular", "min": 45, "mode": 90,
                                             "max": 150},
    "approval_probability": 0.5,
    "source": "MOFCOM Ann. No. 1 (2026); WSJ 2026-01-09 (DOMAIN.md C2); parameters: assumption"}


def _apr(sc: dict) -> dict:
    return sc["controls"]["apr_2025"]


def _general_changes(sc: dict) -> list[dict]:
    """The changes of the April control that apply to every buyer and destination."""
    return [ch for ch in _apr(sc).get("changes", [])
            if "destinations" not in ch and "buyers" not in ch]


def _change_on(sc: dict, day) -> dict | None:
    for ch in _general_changes(sc):
        if str(ch.get("from")) == day:
            return ch
    return None


def _approval_in_force(sc: dict, day: str) -> float:
    """The approval probability of the April control for every buyer on *day*."""
    p = _apr(sc).get("approval_probability", 1.0)
    for ch in sorted(_general_changes(sc), key=lambda c: str(c.get("from"))):
        if str(ch.get("from")) <= day and "approval_probability" in ch:
            p = ch["approval_probability"]
    return p


def set_approval_april(net, sc, v):
    _apr(sc)["approval_probability"] = v


def set_approval_june(net, sc, v):
    ch = _change_on(sc, "2025-06-10")
    if ch is not None:
        ch["approval_probability"] = v


def set_approval_general(net, sc, v):
    ch = _change_on(sc, "2025-12-02")
    if ch is not None:
        ch["approval_probability"] = v


def set_review_scale(net, sc, v):
    rd = _apr(sc)["review_days"]
    if isinstance(rd, dict):
        for k in ("min", "mode", "max", "mean", "low", "high", "value"):
            if k in rd:
                rd[k] = rd[k] * v
    else:
        _apr(sc)["review_days"] = rd * v


def set_renew_before(net, sc, v):
    """Days before expiry at which a used general licence (2 Dec 2025) is renewed."""
    ch = _change_on(sc, "2025-12-02")
    if ch is not None:
        ch["renew_before_days"] = v


def _is_japan(ch: dict) -> bool:
    return ch.get("destinations") == ["JP"]


def has_japan_regime(sc: dict) -> bool:
    return any(_is_japan(ch) for ch in _apr(sc).get("changes", []))


def set_japan_regime(net, sc, v):
    """0: no Japan regime; 1: the regime from 6 January 2026 (added when the scenario has
    none, as the layer "japan-2026" does)."""
    c = _apr(sc)
    changes = [ch for ch in c.get("changes", []) if not _is_japan(ch)]
    if v:
        import datetime as _dt
        old = [ch for ch in c.get("changes", []) if _is_japan(ch)]
        changes.append(old[0] if old else {"from": _dt.date(2026, 1, 6), **JAPAN_CHANGE})
    c["changes"] = changes


def _after_denial_key(sc: dict) -> str:
    return "reapply_days" if _apr(sc).get("on_denial") == "reapply" else "avoid_days"


def set_after_denial_days(net, sc, v):
    """Days to re-apply after a denial (on_denial = "reapply") or to avoid the lane
    ("cancel"), on every control that has them."""
    key = _after_denial_key(sc)
    for c in sc.get("controls", {}).values():
        if key in c:
            c[key] = v


def set_reapply(net, sc, v):
    """1: denied exporters re-apply (``on_denial = "reapply"``, as the scenario has it, or after
    14 days); 0: denied orders are cancelled and the buyer avoids the lane for 30 days."""
    for c in sc.get("controls", {}).values():
        if c.get("regime") != "licensing":
            continue
        if v:
            c["on_denial"] = "reapply"
            c.setdefault("reapply_days", 14)
            c.pop("avoid_days", None)
        else:
            c["on_denial"] = "cancel"
            c["avoid_days"] = 30
            c.pop("reapply_days", None)


def set_clearance_scale(net, sc, v):
    """Consignment testing delays (clearance holds) scaled by *v*."""
    for h in sc.get("clearance", []):
        d = h.get("delay_days")
        if isinstance(d, dict):
            for k in ("min", "mode", "max", "mean", "low", "high", "value"):
                if k in d:
                    d[k] = d[k] * v
        elif d is not None:
            h["delay_days"] = d * v


def _non_cn_manufacturers(net):
    for nid, n in net["nodes"].items():
        if n.get("kind") == "manufacturer" and n.get("country") != "CN":
            yield nid, n


def set_cover_days(net, sc, v):
    """Safety cover of non-Chinese manufacturers moved by *v* days: s, S and the initial
    stock move by the usage of those days, so the cover changes and nothing else."""
    for _nid, n in _non_cn_manufacturers(net):
        for mat, st in n.get("stock", {}).items():
            rate = n.get("demand", {}).get(mat, {}).get("rate_t_per_year")
            pol = st.get("policy", {})
            if rate and pol.get("type") == "sS":
                shift = rate * v / 365.0
                pol["s"] = max(pol["s"] + shift, 0.0)
                pol["S"] = max(pol["S"] + shift, pol["s"] + 1e-6)
                st["initial"] = max(st["initial"] + shift, 0.0)


def set_export_scale(net, sc, v):
    """Demand of non-Chinese manufacturers scaled by *v*, with their (s, S) bands and initial
    stocks (so the cover in days is unchanged)."""
    for _nid, n in _non_cn_manufacturers(net):
        for mat, dem in n.get("demand", {}).items():
            dem["rate_t_per_year"] *= v
            size = dem.get("size")
            if isinstance(size, dict):          # the order-size distribution scales with it
                for k in ("mean", "sd"):
                    if k in size:
                        size[k] *= v
            st = n.get("stock", {}).get(mat)
            if st:
                st["initial"] *= v
                pol = st.get("policy", {})
                for k in ("s", "S"):
                    if k in pol:
                        pol[k] *= v


def set_standard_dy(net, sc, v):
    net["materials"]["ndfeb_magnet"]["content"]["Dy"] = v
    if "elements" in net["materials"]["ndfeb_magnet"]:
        del net["materials"]["ndfeb_magnet"]["elements"]


def _cv_of(dem: dict) -> float | None:
    if "cv" in dem:
        return dem["cv"]
    size = dem.get("size")
    if isinstance(size, dict) and size.get("mean"):
        return size.get("sd", 0.0) / size["mean"]
    return None


def set_demand_cv(net, sc, v):
    for n in net["nodes"].values():
        for dem in n.get("demand", {}).values():
            if "cv" in dem:
                dem["cv"] = v
            size = dem.get("size")
            if isinstance(size, dict) and "sd" in size and "mean" in size:
                size["sd"] = size["mean"] * v   # the written form of cv (to_dict)


NETWORK_SETTERS = (set_cover_days, set_export_scale, set_standard_dy, set_demand_cv)


@dataclass(frozen=True)
class Assumption:
    """One assumption: how to read its base value, its plausible range, how to set it and
    where the range comes from."""

    name: str
    label: str
    base: Callable          # (network dict, history scenario dict) -> base value
    low: float
    high: float
    apply: Callable
    why: str


def _first_cv(net, sc):
    for n in net["nodes"].values():
        for dem in n.get("demand", {}).values():
            cv = _cv_of(dem)
            if cv is not None:
                return round(cv, 6)
    return float("nan")


ASSUMPTIONS = [
    Assumption("approval_april", "licence approval from 4 Apr 2025",
               lambda net, sc: _apr(sc)["approval_probability"], 0.13, 0.5, set_approval_april,
               "CLEPA ~25% of requests granted (A5); 19 of 141 = 13% in Oct 2025 (A5); 0.5 "
               "assumption"),
    Assumption("approval_june", "licence approval from 10 Jun 2025",
               lambda net, sc: _approval_in_force(sc, "2025-06-10"), 0.5, 0.9,
               set_approval_june, "assumption (June 2025 call and London framework, A5/C2)"),
    Assumption("approval_general", "licence approval from 2 Dec 2025",
               lambda net, sc: _approval_in_force(sc, "2025-12-02"), 0.5, 0.98,
               set_approval_general, "assumption (general licences, A5/C2)"),
    Assumption("review_scale", "licence review time (x April base)", lambda net, sc: 1.0,
               0.7, 1.4, set_review_scale, "45 working days statutory, 'barely maintained' "
               "(A5); range assumption"),
    Assumption("japan_regime", "Japan regime from Jan 2026 (0 off, 1 on)",
               lambda net, sc: float(has_japan_regime(sc)), 0.0, 1.0, set_japan_regime,
               "assumption (WSJ report of halted reviews; MOFCOM: civilians unaffected, C2)"),
    Assumption("reapply", "after a denial: 1 re-apply, 0 cancel and avoid the lane 30 d",
               lambda net, sc: float(_apr(sc).get("on_denial") == "reapply"), 0.0, 1.0,
               set_reapply, "assumption of the scenario files (C2: military end users are "
               "'denied in principle', so their re-applications fail)"),
    Assumption("after_denial_days", "days to re-apply / avoid the lane after a denial",
               lambda net, sc: _apr(sc).get(_after_denial_key(sc), 0), 7, 60,
               set_after_denial_days, "assumption"),
    Assumption("renew_before", "general licences renewed ... days before expiry",
               lambda net, sc: (_change_on(sc, "2025-12-02") or {}).get("renew_before_days", 0),
               0, 150, set_renew_before,
               "assumption: no renewal practice on record; 63 calendar days statutory review (A5)"),
    Assumption("clearance_scale", "magnet consignment testing delay (x base)",
               lambda net, sc: 1.0 if sc.get("clearance") else float("nan"), 0.5, 2.0,
               set_clearance_scale, "assumption: a week to a month per consignment (F4)"),
    Assumption("cover_days", "safety cover of non-CN manufacturers (days added)",
               lambda net, sc: 0.0, -30, 30, set_cover_days,
               "A5: 2-3 months of magnets in total; just-in-time plants 2-4 weeks"),
    Assumption("export_scale", "non-CN demand (x 2024 calibration)", lambda net, sc: 1.0,
               0.85, 1.1, set_export_scale,
               "F1: 2024 exports 58,152 t; 0.85 = the Jan-Jul 2025 level"),
    Assumption("standard_dy", "Dy in standard-grade NdFeB (mass fraction)",
               lambda net, sc: net["materials"]["ndfeb_magnet"].get("content", {}).get("Dy", 0),
               0.0, 0.012, set_standard_dy, "F2: 0.6-1.2%; 0 = the former Nd/Pr-only grade"),
    Assumption("demand_cv", "cv of weekly call-offs", _first_cv, 0.15, 0.5, set_demand_cv,
               "assumption"),
]


# ---- running one setting ---------------------------------------------------------------------
def build(net0: dict, scs0: dict[str, dict], assumption: Assumption | None, value):
    """The network and scenarios with one assumption set to *value* (None: the base)."""
    net = copy.deepcopy(net0)
    scs = {k: copy.deepcopy(v) for k, v in scs0.items()}
    if assumption is not None:
        if assumption.apply in NETWORK_SETTERS:
            assumption.apply(net, None, value)          # the network once
        else:
            for sc in scs.values():
                assumption.apply(None, sc, value)
    return sim.Network.from_dict(net), {k: sim.Scenario.from_dict(v) for k, v in scs.items()}


def per_replication(network, scenarios: dict, reps: int, seed: int) -> pd.DataFrame:
    """The headline outputs of each replication (one row per replication)."""
    res = bt.replay(network, scenarios[HISTORY], reps, seed)
    q1, q2 = slice(0, 3), slice(3, 6)
    horizon_weeks = (bt.END - bt.SHOCK).days / 7.0
    weeks = res["shortage"].drop(columns="replication").min(axis=1, skipna=True)
    out = pd.DataFrame({
        "exports_q2_vs_q1": res["total"][:, q2].sum(1) / res["total"][:, q1].sum(1),
        "us_exports_q2_vs_q1": res["us"][:, q2].sum(1) / np.maximum(res["us"][:, q1].sum(1),
                                                                     1e-9),
        "weeks_to_first_auto_shortage": weeks.fillna(horizon_weeks).to_numpy(),
    })
    diffs = {"truce_expiry_auto_fill": [], "truce_expiry_defense_fill": []}
    for r in range(reps):
        fills = {}
        for key in (HOLDS, EXPIRES):
            run = sim.simulate(network, scenarios[key], seed=seed, replication=r)
            fills[key] = (run.kpi("fill_rate", "sector:automotive"),
                          run.kpi("fill_rate", "sector:defense"))
        diffs["truce_expiry_auto_fill"].append(100 * (fills[EXPIRES][0] - fills[HOLDS][0]))
        diffs["truce_expiry_defense_fill"].append(100 * (fills[EXPIRES][1] - fills[HOLDS][1]))
    for k, v in diffs.items():
        out[k] = v
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None, help=f"replications (default {REPS})")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_REPS} replications")
    p.add_argument("--seed", type=int, default=RANDOM_SEED, help="root seed")
    p.add_argument("--only", nargs="*", default=None,
                   help="names of the assumptions to vary (default: all)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT_DIR})")
    args = p.parse_args(argv)
    reps = args.reps or (QUICK_REPS if args.quick else REPS)
    if reps < 2:
        raise SystemExit("error: --reps: need at least 2 replications for CIs")
    chosen = [a for a in ASSUMPTIONS if args.only is None or a.name in args.only]
    unknown = set(args.only or ()) - {a.name for a in ASSUMPTIONS}
    if unknown:
        raise SystemExit(f"error: --only: unknown assumption(s) {sorted(unknown)}; "
                         f"known: {', '.join(a.name for a in ASSUMPTIONS)}")
    out = args.out or (OUT_DIR.with_name(OUT_DIR.name + "-quick") if args.quick else OUT_DIR)
    out.mkdir(parents=True, exist_ok=True)

    net0 = sim.load_network(NETWORK).to_dict()
    scs0 = {k: sim.load_scenario(k).to_dict() for k in {HISTORY, HOLDS, EXPIRES}}
    net, scs = build(net0, scs0, None, None)
    base = per_replication(net, scs, reps, args.seed)
    print(f"base ({reps} replications, root seed {args.seed}):")
    for k, label in OUTPUTS.items():
        x = base[k].to_numpy()
        print(f"  {label:48s} {x.mean():9.3f} +- {1.96 * x.std(ddof=1) / np.sqrt(reps):.3f}")
    rows = []
    for a in chosen:
        base_value = a.base(net0, scs0[HISTORY])
        if base_value != base_value:                # NaN: the files have no such assumption
            print(f"  skipped: {a.name} (not in the network or scenario files)")
            continue
        for level, value in (("low", a.low), ("high", a.high)):
            if value == base_value:
                res = base
            else:
                net, scs = build(net0, scs0, a, value)
                res = per_replication(net, scs, reps, args.seed)
            for k in OUTPUTS:
                d = res[k].to_numpy() - base[k].to_numpy()
                rows.append({"assumption": a.name, "label": a.label, "level": level,
                             "value": value, "base_value": base_value, "output": k,
                             "mean": res[k].mean(), "base_mean": base[k].mean(),
                             "difference": d.mean(),
                             "ci95": 1.96 * d.std(ddof=1) / np.sqrt(reps), "why": a.why})
        print(f"  done: {a.name}")
    table = pd.DataFrame(rows)
    table.to_csv(out / "tornado.csv", index=False)
    md = markdown(table, reps)
    (out / "tornado.md").write_text(md)
    print("\n" + md)
    plot(table, out / "tornado.png")
    print(f"Written: {out}/tornado.csv, tornado.md, tornado.png")
    return 0


def markdown(table: pd.DataFrame, reps: int) -> str:
    """The tornado as a Markdown table: per assumption, low -> high range and, per output, the
    difference from the base at the low and at the high end (with 95% CI half-widths)."""
    lines = ["| Assumption (low / base / high) | " + " | ".join(OUTPUTS.values()) + " |",
             "|---|" + "---|" * len(OUTPUTS)]
    base = table.groupby("output")["base_mean"].first()
    lines.append("| **base value** | " + " | ".join(f"**{base[k]:.3f}**" for k in OUTPUTS) + " |")
    for name, g in table.groupby("assumption", sort=False):
        r0 = g.iloc[0]
        cells = []
        for k in OUTPUTS:
            lo = g[(g.output == k) & (g.level == "low")].iloc[0]
            hi = g[(g.output == k) & (g.level == "high")].iloc[0]
            cells.append(f"{lo.difference:+.3f} ±{lo.ci95:.3f} / {hi.difference:+.3f} "
                         f"±{hi.ci95:.3f}")
        lines.append(f"| {r0.label} ({r0.value:g} / {r0.base_value:g} / "
                     f"{g[g.level == 'high'].iloc[0].value:g}) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Cells: difference from the base at the low / high end of the range "
                 f"(± 95% CI half-width of the paired difference, {reps} replications with "
                 "common random numbers).")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    """One tornado panel per output: bars from the low-end to the high-end difference,
    assumptions sorted by the width of their bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = 3
    nrow = -(-len(OUTPUTS) // ncol)
    fig, grid = plt.subplots(nrow, ncol, figsize=(19, 5.2 * nrow), squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(OUTPUTS):]:
        ax.axis("off")
    for ax, (k, label) in zip(axes, OUTPUTS.items()):
        g = table[table.output == k]
        lo = g[g.level == "low"].set_index("assumption")["difference"]
        hi = g[g.level == "high"].set_index("assumption")["difference"]
        order = (hi - lo).abs().sort_values().index
        y = np.arange(len(order))
        ax.barh(y, lo[order], color="tab:blue", alpha=0.7, label="low end")
        ax.barh(y, hi[order], color="tab:red", alpha=0.7, label="high end")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [g[g.assumption == a].label.iloc[0] for a in order], fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("difference from base")
    axes[0].legend(fontsize=8)
    fig.suptitle("One-at-a-time sensitivity of the headline outputs (paired differences from the "
                 "base, common random numbers)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
