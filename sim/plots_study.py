"""Figures of plan studies (:mod:`sim.study`), drawn from their saved tables.

* :func:`plan_forest` -- paired differences plan - reference with 95% CIs, one panel per KPI,
  one row per scenario, one marker per plan ("plan vs reference under scenario");
* :func:`cost_effectiveness_plot` -- dollars per tonne of unmet demand avoided and per
  defense-fill point, with CIs (an open interval is drawn to the panel's edge with an arrow);
* :func:`regret_heatmap` -- the regret of each plan in each scenario of a robustness
  ensemble, with the plans' maximum regret and target share beside it.

:func:`draw_folder` draws every figure of a saved ``plan_study`` or ``robustness`` folder.
Every function takes the long tables of :mod:`sim.tables` (as the study's ``save`` writes them)
and a path, and returns the written path (or None when there is nothing to draw, said on
stderr).
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from . import labels as _labels
from . import style as _style

__all__ = ["plan_forest", "cost_effectiveness_plot", "regret_heatmap", "draw_folder",
           "FOREST_KPIS"]

FOREST_KPIS = (("fill_rate", "sector:defense"), ("fill_rate", "network"),
               ("backordered_t", "network"))


def _skip(what: str, why: str) -> None:
    print(f"note: {what} not drawn: {why}", file=sys.stderr)


def _wide(long, index):
    """Statistics of a long table as columns (one row per *index* tuple)."""
    df = long.set_index([*index, "statistic"])["value"].unstack("statistic")
    df.columns.name = None
    order = list(dict.fromkeys(zip(*(long[c] for c in index))))    # rows in the table's order
    return df.reindex(order).reset_index()


def _dollars(x, _pos=None) -> str:
    """Axis ticks in dollars: 25k, 1.5M."""
    for div, unit in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:g}{unit}"
    return f"{x:g}"


def _scale(kpi: str) -> float:
    return 100.0 if kpi in _labels.PERCENT else 1.0


@_style.styled
def plan_forest(diffs, path, *, kpis=FOREST_KPIS):
    """Paired differences plan - reference with 95% CIs (the ``paired_differences`` table of a
    plan study): one panel per ``(kpi, scope)`` in *kpis*, one row per scenario, one marker
    per plan."""
    if not len(diffs):
        _skip("plan forest plot", "no paired differences (one plan only?)")
        return None
    d = _wide(diffs, ["scenario", "plan", "reference", "kpi", "scope"])
    panels = [(k, s) for k, s in kpis if ((d["kpi"] == k) & (d["scope"] == s)).any()]
    if not panels:
        _skip("plan forest plot", f"none of the KPIs {list(kpis)} is in the table")
        return None
    scenarios = list(dict.fromkeys(d["scenario"]))
    plans = list(dict.fromkeys(d["plan"]))
    ref = str(d["reference"].iloc[0])
    height = 1.6 + 0.55 * len(scenarios) * max(1, len(plans) / 2)
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=_style.figsize(4.4 * len(panels) + 1.2, height))
    n = len(plans)
    for ax, (k, s) in zip(axes[0], panels):
        sub = d[(d["kpi"] == k) & (d["scope"] == s)]
        f = _scale(k)
        for j, p in enumerate(plans):
            rows = sub[sub["plan"] == p]
            for i, sc in enumerate(scenarios):
                r = rows[rows["scenario"] == sc]
                if not len(r):
                    continue
                r = r.iloc[0]
                y = i + (j - (n - 1) / 2) * min(0.25, 0.8 / n)
                m, lo, hi = r["difference"] * f, r["ci95_low"] * f, r["ci95_high"] * f
                ax.errorbar([m], [y], xerr=[[m - lo], [hi - m]], fmt="o", ms=4.5, capsize=3,
                            color=_style.colour(j + 1), label=p if i == 0 else None)
        ax.axvline(0, color="0.4", lw=0.8, ls="--")
        ax.set_yticks(range(len(scenarios)))
        ax.set_yticklabels([f"under {_labels.scenario_label(sc)}" for sc in scenarios])
        ax.set_ylim(len(scenarios) - 0.5, -0.5)
        ax.set_xlabel("\n".join(textwrap.wrap(_labels.kpi_label(k, s, difference=True), 26)))
        ax.set_title(_labels.kpi_label(k, s, unit=False), fontsize="medium")
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    axes[0][-1].legend(title=f"plan vs {ref}", fontsize="small", loc="upper left",
                       bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.suptitle(f"Plans vs {ref} under each scenario: paired differences, 95% CIs "
                 "(common random numbers)")
    fig.tight_layout()
    return _style.save_figure(fig, path)


@_style.styled
def cost_effectiveness_plot(ce, path):
    """Dollars per tonne of unmet demand avoided and per defense-fill point of each plan vs
    the reference under each scenario, with 95% CIs (the ``cost_effectiveness`` table of a plan
    study). Rows whose benefit is not established are drawn open, their interval to the edge;
    plans without benefit are listed in the caption."""
    panels = [("cost_per_t_unmet_avoided_usd", "US$ per tonne of unmet demand avoided"),
              ("cost_per_defense_fill_point_usd", "US$ per percentage point of defense fill")]
    d = _wide(ce[ce["kpi"].isin([p for p, _ in panels])],
              ["scenario", "plan", "reference", "kpi", "label"]) if len(ce) else ce
    if not len(d) or not np.isfinite(d["mean"].to_numpy(dtype=float)).any():
        _skip("cost-effectiveness plot", "no plan has a benefit to price")
        return None
    ref = str(d["reference"].iloc[0])
    rows = list(dict.fromkeys(zip(d["scenario"], d["plan"])))
    fig, axes = plt.subplots(1, 2, squeeze=False,
                             figsize=_style.figsize(10, 1.8 + 0.45 * len(rows)))
    none: dict[str, list[str]] = {}
    colours = {p: _style.colour(1 + j) for j, p in enumerate(dict.fromkeys(p for _, p in rows))}
    for ax, (kpi, title) in zip(axes[0], panels):
        sub = d[d["kpi"] == kpi]
        drawn = []
        for i, (sc, p) in enumerate(rows):
            r = sub[(sub["scenario"] == sc) & (sub["plan"] == p)]
            if not len(r):
                continue
            r = r.iloc[0]
            m, lo, hi = (float(r[c]) for c in ("mean", "ci95_low", "ci95_high"))
            if math.isfinite(m):
                drawn.append((i, p, m, lo, hi, r["label"] != ""))
            else:
                none.setdefault(title.split(" per ", 1)[1], []).append(f"{p} under {sc}")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{p} vs {ref}\nunder {sc}" for sc, p in rows], fontsize="small")
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(title)
        if not drawn:
            ax.text(0.5, 0.5, "no plan has a benefit\nto price here", transform=ax.transAxes,
                    ha="center", va="center", color="0.4")
            ax.set_xticks([])
            continue
        vals = np.array([x for _, _, m, lo, hi, _ in drawn for x in (m, lo, hi)], dtype=float)
        vals = vals[np.isfinite(vals)]
        # ratios of plans can differ by orders of magnitude: a log axis when all are positive
        log = vals.min() > 0 and vals.max() / vals.min() > 30
        edge = float(vals.max()) * (1.6 if log else 1.15) if vals.max() > 0 else 1.0
        left = float(vals.min()) / 1.6 if log else min(0.0, float(vals.min()) * 1.15)
        for i, p, m, lo, hi, open_ in drawn:
            hi_d = min(hi, edge) if math.isfinite(hi) else edge
            lo_d = max(lo, left) if math.isfinite(lo) else left
            c = colours[p]
            ax.errorbar([m], [i], xerr=[[m - lo_d], [hi_d - m]], fmt="o", ms=5, capsize=3,
                        color=c, mfc="white" if open_ else c)
            if not math.isfinite(hi):
                ax.annotate("", xy=(edge, i), xytext=(m, i),
                            arrowprops=dict(arrowstyle="->", color=c, lw=1))
        if log:
            ax.set_xscale("log")
        ax.set_xlim(left=left, right=edge)
        ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
    axes[0][1].set_yticklabels([])
    note = "Open markers: the benefit's 95% CI reaches zero (ratio interval unbounded)."
    for what, items in none.items():
        note += f" No benefit to price per {what}, not drawn: " + "; ".join(items) + "."
    fig.suptitle("Cost-effectiveness of each plan (extra cost over the run's horizon / "
                 "benefit), 95% CIs")
    lines = textwrap.wrap(note, int(fig.get_figwidth() * 15))
    fig.text(0.01, 0.005, "\n".join(lines), fontsize="small", color="0.25", ha="left",
             va="bottom")
    fig.tight_layout(rect=(0, min(0.4, (len(lines) * 11 + 8) / (fig.get_figheight() * 72)), 1, 1))
    return _style.save_figure(fig, path)


@_style.styled
def regret_heatmap(ensemble, table, path, *, kpi_label_text: str = "", target=None):
    """The regret of each plan (rows) in each ensemble member (columns) from a robustness
    folder's ``ensemble_values`` (statistic ``regret``) and ``robustness`` tables, annotated
    with each plan's maximum regret and, given *target*, its target share."""
    reg = ensemble[ensemble["statistic"] == "regret"]
    if not len(reg):
        _skip("regret heatmap", "no regret values")
        return None
    plans = list(table["plan"])
    members = list(dict.fromkeys(reg["scenario"]))
    m = reg.pivot_table(index="plan", columns="scenario", values="value", sort=False)
    m = m.reindex(index=plans, columns=members)
    kpi = str(reg["kpi"].iloc[0])
    f = _scale(kpi)
    vals = m.to_numpy(dtype=float) * f
    fig, ax = plt.subplots(figsize=_style.figsize(max(6.0, 1.2 + 0.5 * len(members)) + 2.5,
                                                  1.6 + 0.45 * len(plans)))
    im = ax.imshow(vals, aspect="auto", cmap="Reds", vmin=0)
    if len(members) <= 24:
        for i in range(len(plans)):
            for j in range(len(members)):
                ax.text(j, i, f"{vals[i, j]:.3g}", ha="center", va="center", fontsize="x-small",
                        color="white" if vals[i, j] > 0.6 * np.nanmax(vals) else "black")
    ax.set_xticks(range(len(members)))
    ax.set_xticklabels([str(x) for x in members], rotation=60, ha="right", fontsize="small")
    t = table.set_index("plan")
    side = [f"{p}\nmax {t.loc[p, 'max_regret'] * f:.3g}"
            + (f", meets target {t.loc[p, 'target_share']:.0%}" if "target_share" in t else "")
            for p in plans]
    ax.set_yticks(range(len(plans)))
    ax.set_yticklabels(side, fontsize="small")
    unit = "percentage points" if f == 100.0 else _labels.kpi_unit(kpi)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(f"regret ({unit})" if unit else "regret")
    what = kpi_label_text or _labels.kpi_label(kpi, str(reg["scope"].iloc[0]), unit=False)
    tgt = f"; target {target:g}" if target is not None else ""
    ax.set_title(f"Regret of each plan vs the best plan in each scenario: {what}{tgt}",
                 fontsize="medium")
    fig.tight_layout()
    return _style.save_figure(fig, path)


def draw_folder(folder: str | Path) -> list[Path]:
    """Draw every figure of a saved plan study (``plan_forest.png``,
    ``cost_effectiveness.png``) or robustness folder (``regret.png``) into it; returns the
    written paths. Reads only the tables and the manifest."""
    from .tables import read_table

    folder = Path(folder)
    meta = json.loads((folder / "manifest.json").read_text())
    out = []
    if meta.get("kind") == "plan_study":
        out.append(plan_forest(read_table(folder / "paired_differences"),
                               folder / "plan_forest.png"))
        out.append(cost_effectiveness_plot(read_table(folder / "cost_effectiveness"),
                                           folder / "cost_effectiveness.png"))
    elif meta.get("kind") == "robustness":
        table = read_table(folder / "robustness")
        out.append(regret_heatmap(read_table(folder / "ensemble_values"), table,
                                  folder / "regret.png", target=meta.get("target")))
    return [p for p in out if p is not None]
