"""Figures of scenario discovery (:mod:`sim.ema`): the PRIM box over the experiments.

:func:`prim_box_plot` draws, for the uncertainties a PRIM box restricts, the experiments as
points (cases of interest in vermillion, the others in grey) on each pair of restricted
dimensions with the box drawn over them, and PRIM's peeling trajectory (coverage against
density) with the chosen box marked. It reads plain tables (the experiments, a boolean per
experiment, the box limits as :func:`sim.ema.prim_box` returns them), so it draws a saved
study as well as a live one.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np

from . import style as _style

__all__ = ["prim_box_plot"]

_FAIL = "#D55E00"       # Okabe-Ito vermillion
_OK = "#BBBBBB"


def _axis_label(column: str, labels: dict[str, str] | None) -> str:
    """A parameter's axis label: the one given, else the column name in words."""
    return (labels or {}).get(column) or column.replace("_", " ")


def _tightness(limits, experiments, column: str) -> float:
    """The share of a column's sampled range that the box cuts away (0: unrestricted)."""
    x = experiments[column].to_numpy(float)
    span = np.nanmax(x) - np.nanmin(x)
    if not span > 0:
        return 0.0
    return 1.0 - (limits.loc[column, "max"] - limits.loc[column, "min"]) / span


def prim_box_plot(experiments, fails, limits, path, *, trajectory=None, title: str = "",
                  caption: str = "", labels: dict[str, str] | None = None):
    """Draw a PRIM box over the experiments; returns the written path.

    Parameters
    ----------
    experiments:
        DataFrame, one row per experiment, a column per uncertainty.
    fails:
        Boolean array: the cases of interest (e.g. the plan misses its target).
    limits:
        DataFrame indexed by the restricted columns with ``min`` and ``max``
        (:func:`sim.ema.prim_box`), ``coverage`` and ``density`` in ``limits.attrs``.
    path:
        Output file (formats of :func:`sim.style.output`).
    trajectory:
        PRIM's peeling trajectory (``box.peeling_trajectory``: ``coverage``, ``density``),
        drawn in a last panel when given.
    title, caption:
        Figure title and a caption line (the experiments' design, seed and replications).
    labels:
        Column -> axis label (default: the column name in words).

    With more than three restricted uncertainties, the three the box cuts most (by the share
    of their sampled range it removes) are drawn, in pairs; the box's table has them all.
    """
    fails = np.asarray(fails, dtype=bool)
    dims = sorted(limits.index, key=lambda c: -_tightness(limits, experiments, c))
    if len(dims) == 1:          # one restricted dimension: plot it against the next one
        others = [c for c in experiments.columns if c not in dims]
        pairs = [(dims[0], others[0])] if others else []
    else:
        pairs = list(itertools.combinations(dims[:3], 2))
    n = len(pairs) + (trajectory is not None)
    if n == 0:
        return None
    cols = min(n, 2)
    rows = (n + 1) // 2
    fig, grid = plt.subplots(rows, cols, figsize=_style.figsize(7.2, 3.3 * rows + 0.6),
                             squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, (x, y) in zip(axes, pairs):
        xs, ys = experiments[x].to_numpy(float), experiments[y].to_numpy(float)
        ax.scatter(xs[~fails], ys[~fails], s=9, color=_OK, label="other experiments",
                   linewidths=0)
        ax.scatter(xs[fails], ys[fails], s=11, color=_FAIL, label="cases of interest",
                   linewidths=0)
        x0, x1 = (limits.loc[x, "min"], limits.loc[x, "max"]) if x in limits.index \
            else (np.nanmin(xs), np.nanmax(xs))
        y0, y1 = (limits.loc[y, "min"], limits.loc[y, "max"]) if y in limits.index \
            else (np.nanmin(ys), np.nanmax(ys))
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ls="--",
                                   edgecolor="black", label="PRIM box"))
        ax.set_xlabel(_axis_label(x, labels))
        ax.set_ylabel(_axis_label(y, labels))
    if len(pairs):
        axes[0].legend(loc="best", fontsize="x-small", frameon=False)
    if trajectory is not None:
        ax = axes[n - 1]
        ax.plot(trajectory["coverage"], trajectory["density"], "o-", ms=3, color="#0072B2")
        cov, den = limits.attrs.get("coverage"), limits.attrs.get("density")
        if cov is not None and den is not None:
            ax.plot([cov], [den], "s", ms=8, mfc="none", mec="black", label="box shown")
            ax.legend(loc="best", fontsize="x-small", frameon=False)
        ax.set_xlabel("coverage (share of the cases in the box)")
        ax.set_ylabel("density (share of the box that are cases)")
        ax.set_title("PRIM peeling trajectory", fontsize="small")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
    if title:
        fig.suptitle(title, fontsize="medium")
    stats = ""
    if "coverage" in limits.attrs:
        stats = (f"box: coverage {limits.attrs['coverage']:.0%}, density "
                 f"{limits.attrs['density']:.0%}, mass {limits.attrs.get('mass', np.nan):.0%}")
    text = "; ".join(t for t in (stats, caption) if t)
    if text:
        fig.text(0.01, 0.005, text, fontsize="x-small", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _style.save_figure(fig, Path(path))
