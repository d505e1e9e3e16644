"""Figures, drawn from results only (never by running the model).

Every figure has a title, axis units, a legend and a caption line naming the scenario, the
number of replications and the seed. Functions return the :class:`matplotlib.figure.Figure`
(for notebooks) and, given ``path`` (or ``out_dir``), write it as PNG and return the path(s).

One replication (:class:`~sim.results.Run`): :func:`plot_run`, :func:`plot_run_comparison`.

Monte Carlo (:class:`~sim.experiment.MonteCarloResults`): :func:`fan_chart` (quantile bands of
a weekly series), :func:`scenario_distributions` (a KPI across scenarios and the paired
differences), :func:`forest_plot` (paired differences with 95% CIs), :func:`plot_monte_carlo`
and :func:`plot_comparison` (every figure of an ``mc`` or ``compare`` folder).

Sweeps (:class:`~sim.sweep.SweepResults`): :func:`sweep_heatmap`, :func:`sweep_lines`,
:func:`tornado` with :func:`one_at_a_time`, and :func:`plot_sweep`.

Structure: :func:`network_map` (tiers, countries, lanes; optional flows and shortages, see
:func:`lane_flows` and :func:`shortage_by_node`).

:func:`replot` redraws the figures of a saved results folder (``python -m sim plot DIR``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch

__all__ = [
    "caption",
    "fan_chart",
    "forest_plot",
    "kpi_label",
    "lane_flows",
    "mark_policy_events",
    "network_map",
    "one_at_a_time",
    "plot_comparison",
    "plot_monte_carlo",
    "plot_run",
    "plot_run_comparison",
    "plot_sweep",
    "replot",
    "rolling_fill_rate",
    "save_figure",
    "scenario_distributions",
    "shortage_by_node",
    "sweep_heatmap",
    "sweep_lines",
    "tornado",
]

SECTOR_COLOURS = {"defense": "#b2182b", "automotive": "#2166ac", "wind": "#1b7837",
                  "electronics": "#762a83", "industrial": "#e08214"}
_CYCLE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f"]

# KPI name -> (readable name, unit); percentages are stored as fractions and drawn x 100
KPI_UNITS = {
    "fill_rate": ("fill rate", "%"),
    "order_fill_rate": ("order fill rate (orders filled completely)", "%"),
    "demand_t": ("demand", "t"),
    "filled_t": ("demand filled from stock", "t"),
    "backordered_t": ("backordered", "t"),
    "lost_t": ("lost sales", "t"),
    "peak_backorders_t": ("peak backorders", "t"),
    "mean_backorders_t": ("mean backorders", "t"),
    "stockout_days": ("stockout days (unmet backlog or lost demand)", "days"),
    "short_order_days": ("days with an order not filled completely", "days"),
    "period_service_level": ("period service level (days without stockout)", "%"),
    "first_shortage_day": ("first shortage", "day of run"),
    "shortage_occurred": ("replications with a shortage", "%"),
    "first_shortage_after_day": ("first shortage after the event", "day of run"),
    "shortage_after_occurred": ("replications with a shortage after the event", "%"),
    "shortage_after_event_day": ("event date of first_shortage_after_day", "day of run"),
    "orders": ("orders", "count"),
    "purchase_cost_usd": ("purchase cost", "USD"),
    "tariff_cost_usd": ("tariff cost", "USD"),
    "holding_cost_usd": ("holding cost", "USD"),
    "truce_outcome": ("truce outcome", "0 none, 1 reinstate, 2 extend, 3 escalate"),
    "truce_extensions": ("truce extensions", "count"),
    "licence_reviews": ("licence reviews", "count"),
    "licence_denials": ("licence denials", "count"),
    "licence_review_days_mean": ("mean licence review time", "days"),
}
# weekly series families of MonteCarloResults.series
SERIES_UNITS = {
    "fill_rate": ("fill rate in the week", "%"),
    "backorders_t": ("backorders at end of week", "t"),
    "net_inventory_t": ("net inventory at end of week", "t"),
    "inventory_t": ("stock on hand at end of week", "t"),
}
PERCENT = {"fill_rate", "order_fill_rate", "period_service_level", "shortage_occurred",
           "shortage_after_occurred"}
KIND_ORDER = {"mine": 0, "processor": 1, "magnet_maker": 2, "stockpile": 3, "manufacturer": 4,
              "defense_user": 4}
KIND_MARKERS = {"mine": "^", "processor": "s", "magnet_maker": "D", "stockpile": "h",
                "manufacturer": "o", "defense_user": "p"}
DEMAND_KINDS = ("manufacturer", "defense_user")


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

def caption(fig, text: str) -> None:
    """Put a caption line at the bottom of *fig* (wrapped to the figure's width)."""
    width = max(40, int(fig.get_figwidth() * 17))
    lines = textwrap.wrap(str(text), width, break_on_hyphens=False) or [""]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=7, color="0.35", ha="left", va="bottom")
    fig._caption_lines = len(lines)


def _caption_space(fig) -> float:
    """Fraction of the figure height that the caption needs at the bottom."""
    lines = getattr(fig, "_caption_lines", 1)
    return min(0.3, (lines * 8.8 + 5.0) / (fig.get_figheight() * 72.0))


def save_figure(fig, path: str | Path) -> Path:
    """Save *fig* as PNG atomically (temporary file, then rename) and close it."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    plt.close(fig)
    return path


def _finish(fig, path, *, rect=(0, None, 1, 1)):
    """Lay out *fig* above its caption; save it to *path* (returning the path) or return it."""
    rect = (rect[0], _caption_space(fig) if rect[1] is None else rect[1], rect[2], rect[3])
    engine = fig.get_layout_engine()
    if engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine":
        engine.set(rect=(rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1]))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)     # tight_layout on crowded legends
            fig.tight_layout(rect=rect)
    if path is None:
        return fig
    return save_figure(fig, path)


def _dates(start: _dt.date, n: int) -> np.ndarray:
    return np.array([start + _dt.timedelta(days=i) for i in range(n)])


MAJOR_EVENT_KINDS = ("control", "truce", "outage", "closure", "surge")


def mark_policy_events(ax, events, start: _dt.date, *, label: bool = True, max_labels: int = 12,
                       min_gap_days: float = 45.0):
    """Draw vertical lines for policy events ``(day, kind, label)`` on a date axis.

    Controls, the truce, outages, closures and surges are drawn dark and labelled (at most
    *max_labels*, none closer than *min_gap_days* to the previous label, so labels never pile
    up); tariff steps and regime changes are drawn as light dotted lines without labels."""
    last = -math.inf
    shown = 0
    for day, kind, text in sorted(events, key=lambda e: e[0]):
        x = start + _dt.timedelta(days=float(day))
        major = kind in MAJOR_EVENT_KINDS
        ax.axvline(x, color="0.35" if major else "0.7", lw=0.8 if major else 0.6,
                   ls="--" if major else ":", zorder=0)
        if label and major and shown < max_labels and day - last >= min_gap_days:
            last = day
            shown += 1
            ax.text(x, 0.98, " " + text, rotation=90, va="top", ha="left", fontsize=6,
                    color="0.25", transform=ax.get_xaxis_transform(), clip_on=True)


def rolling_fill_rate(demand: np.ndarray, filled: np.ndarray, window: int = 30) -> np.ndarray:
    """Fill rate over a trailing window of *window* days (1 where there was no demand)."""
    k = np.ones(window)
    d = np.convolve(demand, k)[: len(demand)]
    f = np.convolve(filled, k)[: len(filled)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, f / np.where(d > 0, d, 1.0), 1.0)


def _format_date_axis(ax) -> None:
    """Year ticks for long runs; concise month ticks for runs under about two and a half years."""
    lo, hi = ax.get_xlim()
    if hi - lo > 900:
        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=(4, 7, 10)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    else:
        loc = mdates.AutoDateLocator(minticks=4, maxticks=9)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _scope_label(scope: str) -> str:
    return scope.split(":", 1)[1] if ":" in scope else scope


def _split_col(col: str) -> tuple[str, str]:
    name, _, scope = col.partition("|")
    return name, scope


def _scale(kpi: str) -> float:
    return 100.0 if kpi in PERCENT else 1.0


def kpi_label(col: str, *, difference: bool = False) -> str:
    """Readable axis label with units for a KPI column ``"kpi|scope"`` (or a bare KPI name)."""
    name, scope = _split_col(col)
    text, unit = KPI_UNITS.get(name, (name.replace("_", " "), ""))
    if scope:
        text += f", {_scope_label(scope)}"
    if difference:
        unit = "percentage points" if unit == "%" else unit
        text = f"difference in {text}"
    return f"{text} ({unit})" if unit else text


def _series_label(name: str) -> str:
    fam, _scope = _split_col(name)
    text, unit = SERIES_UNITS.get(fam, (fam.replace("_", " "), ""))
    return f"{text} ({unit})" if unit else text


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _colour(i: int) -> str:
    return _CYCLE[i % len(_CYCLE)]


def _sector_colour(scope: str, i: int) -> str:
    return SECTOR_COLOURS.get(_scope_label(scope), _colour(i))


def _start_of(meta: dict) -> _dt.date:
    s = str(meta.get("start") or "2025-01-01")[:10]
    try:
        return _dt.date.fromisoformat(s)
    except ValueError:
        return _dt.date(2025, 1, 1)


def _mc_caption(results) -> str:
    """Caption naming scenario(s), network, replications and seed of Monte Carlo results."""
    if not isinstance(results, (list, tuple)):
        results = [results]
    names = [str(r.meta.get("scenario", "?")) for r in results]
    reps = [r.reps for r in results]
    seeds = sorted({str(r.meta.get("seed", "?")) for r in results})
    nets = sorted({str(r.meta.get("network", "?")) for r in results})
    fails = sum(len(r.failures) for r in results)
    if len(results) == 1:
        text = f"scenario {names[0]} | network {nets[0]} | {reps[0]} replications"
    else:
        rep_text = f"{reps[0]} replications each" if len(set(reps)) == 1 else \
            "replications " + ", ".join(map(str, reps))
        text = (f"scenarios {', '.join(names)} | network {', '.join(nets)} | {rep_text} "
                "(common random numbers)")
    text += f" | seed {', '.join(seeds)}"
    if fails:
        text += f" | {fails} failed replication(s) excluded"
    return text


def _sweep_caption(res, extra: str = "") -> str:
    m = res.meta or {}
    reps = m.get("reps")
    if reps is None and len(res.table):
        reps = int(res.table.groupby("point").size().max())
    text = (f"sweep ({m.get('design', 'grid')}, {len(res.points)} points x {reps} replications, "
            f"common random numbers) | scenario {m.get('scenario', '?')} | network "
            f"{m.get('network', '?')} | seed {m.get('seed', '?')}")
    if res.failures:
        text += f" | {len(res.failures)} failed replication(s) excluded"
    return text + (f" | {extra}" if extra else "")


def _kpi_title(name: str) -> str:
    t = KPI_UNITS.get(name, (name.replace("_", " "),))[0]
    return t[:1].upper() + t[1:]


def _summ(v: np.ndarray) -> dict:
    from .experiment import summarise
    return summarise(np.asarray(v, dtype=float))


# ---------------------------------------------------------------------------------------------
# One replication
# ---------------------------------------------------------------------------------------------

def plot_run(run, out_dir: str | Path | None = None, window: int = 30) -> list[Path]:
    """Inventory and rolling fill rate over time by sector, with policy events marked."""
    sec = run.sector_series()
    x = _dates(run.start, run.ndays)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name in sorted(sec):
        s = sec[name]
        colour = SECTOR_COLOURS.get(name)
        ax1.plot(x, s["inventory"] - s["backorders"], lw=1.2, label=name, color=colour)
        ax2.plot(x, rolling_fill_rate(s["demand"], s["filled"], window) * 100, lw=1.2, label=name,
                 color=colour)
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set_ylabel("net inventory at demand nodes (t)\n(negative = backorders)")
    ax1.set_title(f"Inventory and fill rate by sector - {run.network_name} / {run.scenario_name}")
    ax2.set_ylabel(f"fill rate, trailing {window} days (%)")
    ax2.set_ylim(-2, 102)
    ax2.set_xlabel("date")
    for ax in (ax1, ax2):
        mark_policy_events(ax, run.policy_events, run.start, label=ax is ax1)
        ax.legend(loc="lower left", fontsize=8, title="sector")
        ax.grid(alpha=0.3)
    _format_date_axis(ax2)
    caption(fig, f"scenario {run.scenario_name} | network {run.network_name} | 1 replication | "
                 f"seed {run.seed} (replication {run.replication})")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    if out_dir is None:
        return [fig]
    return [save_figure(fig, Path(out_dir) / "sectors_over_time.png")]


def plot_run_comparison(runs: list, path: str | Path | None = None, sectors=None, window: int = 30):
    """Side-by-side rolling fill rate by sector of several runs (e.g. two scenarios, same seed),
    one panel per run, with each run's policy events marked."""
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.5), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs, strict=False):
        sec = run.sector_series()
        x = _dates(run.start, run.ndays)
        for name in sorted(sec):
            if sectors and name not in sectors:
                continue
            s = sec[name]
            ax.plot(x, rolling_fill_rate(s["demand"], s["filled"], window) * 100, lw=1.2,
                    label=f"{name} ({run.kpi('fill_rate', f'sector:{name}'):.1%})",
                    color=SECTOR_COLOURS.get(name))
        mark_policy_events(ax, run.policy_events, run.start)
        ax.set_title(run.scenario_name)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("date")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8, title="sector (fill rate over run)")
        _format_date_axis(ax)
    axes[0][0].set_ylabel(f"fill rate, trailing {window} days (%)")
    fig.suptitle("Fill rate by sector: " + " vs ".join(r.scenario_name for r in runs))
    caption(fig, f"scenarios {', '.join(r.scenario_name for r in runs)} | network "
                 f"{runs[0].network_name} | 1 replication each | seed {runs[0].seed}")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    if path is None:
        return fig
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Monte Carlo: fan charts and distributions
# ---------------------------------------------------------------------------------------------

def _draw_fan(ax, res, name: str, *, colour: str = "#2166ac", label_events: bool = True,
              legend: bool = True) -> None:
    fam, _scope = _split_col(name)
    s = _scale(fam)
    arr = res.series.get(name)
    start = _start_of(res.meta)
    if arr is None or len(arr) == 0 or arr.shape[1] == 0:
        ax.text(0.5, 0.5, f"no data for {name}", ha="center", va="center", transform=ax.transAxes)
    else:
        b = res.bands(name)
        x = b["date"].to_numpy()
        ax.fill_between(x, b["q05"] * s, b["q95"] * s, color=colour, alpha=0.18, lw=0,
                        label="5-95% of replications")
        ax.fill_between(x, b["q25"] * s, b["q75"] * s, color=colour, alpha=0.38, lw=0,
                        label="25-75%")
        ax.plot(x, b["q50"] * s, color=colour, lw=1.6, label="median")
        ax.plot(x, b["mean"] * s, color="k", lw=0.9, ls=(0, (4, 2)), label="mean")
        ax.set_xlim(x[0], x[-1])
    if fam == "fill_rate":
        ax.set_ylim(-2, 102)
    elif fam in ("backorders_t", "inventory_t"):
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    if fam == "net_inventory_t":
        ax.axhline(0, color="k", lw=0.6)
    mark_policy_events(ax, res.policy_events, start, label=label_events, max_labels=8)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="lower left" if fam == "fill_rate" else "upper left", fontsize=7, ncol=2,
                  framealpha=0.85)
    _format_date_axis(ax)


def fan_chart(res, name: str, path: str | Path | None = None):
    """Quantile bands over replications (5-95%, 25-75%, median, mean) of one weekly series of
    a :class:`~sim.experiment.MonteCarloResults` (e.g. ``"fill_rate|sector:defense"``), with
    the scenario's policy events marked. Fill rates are drawn in percent."""
    if name not in res.series:
        raise KeyError(f"no series {name!r}; available: {sorted(res.series)}")
    fam, scope = _split_col(name)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    _draw_fan(ax, res, name, colour=_sector_colour(scope, 0))
    ax.set_ylabel(_series_label(name))
    ax.set_xlabel("date (weekly grid)")
    ax.set_title(f"{SERIES_UNITS.get(fam, (fam,))[0].capitalize()}, {_scope_label(scope)} - "
                 f"{res.meta.get('scenario', '?')}: spread over {res.reps} replications")
    caption(fig, _mc_caption(res))
    return _finish(fig, path)


def _fan_grid(results: list, names: list[str], title: str, path, *, width: float = 10.0):
    """Rows = series names, columns = results (scenarios); shared y per row."""
    nr, nc = len(names), len(results)
    fig, axes = plt.subplots(nr, nc, figsize=(max(width, 5.2 * nc), 1.2 + 2.7 * nr),
                             sharex=True, sharey="row", squeeze=False)
    for i, name in enumerate(names):
        _fam, scope = _split_col(name)
        for j, res in enumerate(results):
            ax = axes[i][j]
            _draw_fan(ax, res, name, colour=_sector_colour(scope, i), label_events=(i == 0),
                      legend=(i == 0 and j == 0))
            if i == 0 and nc > 1:
                ax.set_title(str(res.meta.get("scenario", "?")), fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{_scope_label(scope)}\n{_series_label(name)}", fontsize=8)
            if i == nr - 1:
                ax.set_xlabel("date (weekly grid)")
    fig.suptitle(title)
    caption(fig, _mc_caption(results))
    return _finish(fig, path)


def _draw_distributions(ax, datasets: list[np.ndarray], labels: list[str], colours: list[str],
                        *, seed: int = 0) -> None:
    """Violin (where there is spread) + box + jittered points + mean diamond, one per dataset."""
    rng = np.random.default_rng(seed)
    pos = np.arange(1, len(datasets) + 1)
    for p, v, c in zip(pos, datasets, colours, strict=False):
        v = v[np.isfinite(v)]
        if len(v) == 0:
            ax.text(p, 0.5, "no data", ha="center", va="center", fontsize=7,
                    transform=ax.get_xaxis_transform())
            continue
        if len(v) >= 3 and np.ptp(v) > 1e-12 * max(1.0, abs(v).max()):
            try:
                parts = ax.violinplot([v], positions=[p], widths=0.8, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(c)
                    body.set_edgecolor("none")
                    body.set_alpha(0.25)
            except (np.linalg.LinAlgError, ValueError):
                pass
        bp = ax.boxplot([v], positions=[p], widths=0.22, showfliers=False, patch_artist=True,
                        manage_ticks=False)
        for box in bp["boxes"]:
            box.set_facecolor("white")
            box.set_edgecolor(c)
        for k in ("whiskers", "caps", "medians"):
            for line in bp[k]:
                line.set_color(c)
        jit = rng.uniform(-0.16, 0.16, len(v))
        ax.scatter(p + jit, v, s=9, color=c, alpha=0.6, lw=0, zorder=3)
        ax.scatter([p], [v.mean()], marker="D", s=30, color="white", edgecolor="k", zorder=4)
    ax.set_xticks(pos)
    ax.set_xticklabels(["\n".join(textwrap.wrap(str(t), 18)) or "?" for t in labels], fontsize=8)
    ax.set_xlim(0.4, len(datasets) + 0.6)
    ax.grid(axis="y", alpha=0.3)


def _dist_legend(ax, colour="0.4") -> None:
    handles = [Patch(facecolor=colour, alpha=0.25, label="distribution (violin)"),
               Patch(facecolor="white", edgecolor=colour, label="quartiles (box)"),
               Line2D([], [], marker="o", ls="", color=colour, ms=4, alpha=0.6,
                      label="one replication"),
               Line2D([], [], marker="D", ls="", mfc="white", mec="k", label="mean")]
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.85)


def _kpi_values(res, col: str) -> np.ndarray:
    if col in res.per_rep.columns:
        return res.per_rep[col].to_numpy(dtype=float)
    return np.array([])


def scenario_distributions(results_list: list, kpi_col: str, path: str | Path | None = None):
    """Distribution over replications of one KPI column (e.g. ``"fill_rate|sector:defense"``)
    in each scenario, and, beside it, the paired differences from the first scenario (by
    replication index, common random numbers) with their mean and 95% CI."""
    results_list = list(results_list)
    if not results_list:
        raise ValueError("give at least one MonteCarloResults")
    name, scope = _split_col(kpi_col)
    s = _scale(name)
    names = [str(r.meta.get("scenario", f"#{i}")) for i, r in enumerate(results_list)]
    colours = [_colour(i) for i in range(len(results_list))]
    paired = len(results_list) > 1
    fig, axes = plt.subplots(1, 2 if paired else 1, figsize=(12 if paired else 7, 5),
                             squeeze=False,
                             gridspec_kw={"width_ratios": [1.2, 1]} if paired else None)
    ax = axes[0][0]
    _draw_distributions(ax, [_kpi_values(r, kpi_col) * s for r in results_list], names, colours)
    ax.set_ylabel(kpi_label(kpi_col))
    ax.set_xlabel("scenario")
    ax.set_title("Distribution over replications")
    _dist_legend(ax)
    if paired:
        ax2 = axes[0][1]
        base = results_list[0]
        diffs, labels = [], []
        for r, nm in zip(results_list[1:], names[1:], strict=False):
            common = base.per_rep.index.intersection(r.per_rep.index)
            if kpi_col in base.per_rep.columns and kpi_col in r.per_rep.columns:
                d = (r.per_rep.loc[common, kpi_col].to_numpy(float)
                     - base.per_rep.loc[common, kpi_col].to_numpy(float)) * s
            else:
                d = np.array([])
            diffs.append(d)
            labels.append(f"{nm}\nminus {names[0]}")
        rng = np.random.default_rng(1)
        for k, (d, c) in enumerate(zip(diffs, colours[1:], strict=False)):
            y = k + 1
            d = d[np.isfinite(d)]
            if len(d) == 0:
                continue
            ax2.scatter(y + rng.uniform(-0.15, 0.15, len(d)), d, s=9, color=c, alpha=0.5, lw=0,
                        label="paired difference, one replication" if k == 0 else None)
            st = _summ(d)
            lo, hi = st.get("ci95_low", np.nan), st.get("ci95_high", np.nan)
            ax2.errorbar([y + 0.3], [st["mean"]], yerr=[[st["mean"] - lo], [hi - st["mean"]]],
                         fmt="o", color="k", capsize=4, ms=5,
                         label="mean with 95% CI" if k == 0 else None)
            ax2.annotate(f"{st['mean']:+.3g}\n[{lo:+.3g}, {hi:+.3g}]", (y + 0.36, st["mean"]),
                         fontsize=7, va="center", ha="left")
        ax2.axhline(0, color="k", lw=0.8)
        ax2.set_xticks(np.arange(1, len(diffs) + 1))
        ax2.set_xticklabels(labels, fontsize=8)
        ax2.set_xlim(0.4, len(diffs) + 0.95)
        ax2.set_ylabel(kpi_label(kpi_col, difference=True))
        ax2.set_xlabel("comparison (paired by replication)")
        ax2.set_title(f"Paired difference vs {names[0]}")
        ax2.grid(axis="y", alpha=0.3)
        ax2.legend(fontsize=7, loc="best", framealpha=0.85)
    fig.suptitle(f"{_kpi_title(name)}, {_scope_label(scope) or 'network'}: {' vs '.join(names)}")
    caption(fig, _mc_caption(results_list))
    return _finish(fig, path)


def forest_plot(diffs, path: str | Path | None = None, *, kpis=("fill_rate", "backordered_t",
                                                                "stockout_days"),
                scopes=None, caption_text: str | None = None):
    """Paired differences (other minus base) with 95% CIs, one panel per KPI, one row per scope
    (network and sectors by default), one marker per compared scenario. *diffs* is the
    DataFrame of :func:`~sim.experiment.paired_comparison` (or several concatenated)."""
    import pandas as pd

    df = pd.DataFrame(diffs).copy()
    if len(df):
        if scopes is None:
            mask = df["scope"].astype(str).str.match(r"^(network$|sector:)")
        else:
            mask = df["scope"].isin(list(scopes))
        df = df[mask & df["kpi"].isin(list(kpis))]
    kp = [k for k in kpis if len(df) and (df["kpi"] == k).any()] or list(kpis[:1])
    n_scopes = df["scope"].nunique() if len(df) else 3
    fig, axes = plt.subplots(1, len(kp), figsize=(4.6 * len(kp) + 1, 2.4 + 0.5 * max(3, n_scopes)),
                             squeeze=False)
    others = list(dict.fromkeys(df["other"])) if len(df) and "other" in df else []
    base = str(df["base"].iloc[0]) if len(df) and "base" in df else "base"
    for ax, k in zip(axes[0], kp, strict=False):
        sub = df[df["kpi"] == k] if len(df) else df
        scope_list = sorted(dict.fromkeys(sub["scope"]) if len(sub) else [],
                            key=lambda sc: (sc != "network", sc != "sector:defense", sc))
        s = _scale(k)
        n_o = max(1, len(others))
        for j, o in enumerate(others):
            so = sub[sub["other"] == o]
            for i, sc in enumerate(scope_list):
                row = so[so["scope"] == sc]
                if not len(row):
                    continue
                r = row.iloc[0]
                y = i + (j - (n_o - 1) / 2) * 0.22
                m, lo, hi = r["difference"] * s, r["ci95_low"] * s, r["ci95_high"] * s
                ax.errorbar([m], [y], xerr=[[m - lo], [hi - m]], fmt="o", color=_colour(j + 1),
                            capsize=3, ms=5, label=f"{o} minus {base}" if i == 0 else None)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(scope_list)))
        ax.set_yticklabels([_scope_label(sc) for sc in scope_list])
        ax.set_ylim(-0.6, max(0.6, len(scope_list) - 0.4))
        ax.invert_yaxis()
        ax.set_xlabel(kpi_label(k, difference=True))
        ax.set_title(KPI_UNITS.get(k, (k,))[0], fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        if not len(sub):
            ax.text(0.5, 0.5, "no paired differences", ha="center", va="center",
                    transform=ax.transAxes)
    axes[0][0].set_ylabel("scope")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="k", lw=0.8))
    labels.append("no difference")
    axes[0][-1].legend(handles, labels, fontsize=7, loc="best", title="mean with 95% CI",
                       title_fontsize=7, framealpha=0.85)
    fig.suptitle(f"Paired differences from {base} (common random numbers)")
    caption(fig, caption_text or (f"scenarios {base}, {', '.join(map(str, others))} | "
                                  f"{int(df['n'].max()) if len(df) and 'n' in df else '?'} "
                                  "paired replications | CIs: normal, 95%"))
    return _finish(fig, path)


def _sector_cols(per_rep_cols, kpi: str = "fill_rate") -> list[str]:
    """``kpi|sector:*`` columns, defense first."""
    cols = [c for c in per_rep_cols if c.startswith(f"{kpi}|sector:")]
    return sorted(cols, key=lambda c: (c != f"{kpi}|sector:defense", c))


def plot_monte_carlo(res, out_dir: str | Path | None) -> list:
    """Every figure of a Monte Carlo result: fan charts per series family (one panel per sector
    or tracked stock) and the distribution of the main KPIs over replications. Returns the
    written paths (or the figures when *out_dir* is None)."""
    out = Path(out_dir) if out_dir is not None else None
    written: list = []
    scen = res.meta.get("scenario", "?")
    for fam, fname in (("fill_rate", "fan_fill_rate.png"), ("backorders_t", "fan_backorders.png"),
                       ("net_inventory_t", "fan_net_inventory.png"),
                       ("inventory_t", "fan_tracked_inventory.png")):
        names = sorted((n for n in res.series if _split_col(n)[0] == fam),
                       key=lambda n: (n != f"{fam}|sector:defense", n))
        if not names:
            continue
        title = (f"{SERIES_UNITS[fam][0].capitalize()} by "
                 f"{'stock' if fam == 'inventory_t' else 'sector'} - {scen}: quantile bands over "
                 f"{res.reps} replications")
        written.append(_fan_grid([res], names, title, out / fname if out else None))
    written.append(_kpi_distribution_figure(res, out / "kpi_distributions.png" if out else None))
    return written


def _kpi_distribution_figure(res, path):
    panels = []
    for kpi in ("fill_rate", "backordered_t", "stockout_days"):
        cols = ([f"{kpi}|network"] if f"{kpi}|network" in res.per_rep.columns else []) + \
            _sector_cols(res.per_rep.columns, kpi)
        if cols:
            panels.append((kpi, cols))
    if not panels:
        panels = [(c.split("|")[0], [c]) for c in list(res.per_rep.columns)[:1]]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.4 * max(1, len(panels)) + 0.6, 4.8),
                             squeeze=False)
    for ax, (kpi, cols) in zip(axes[0], panels, strict=False):
        _draw_distributions(ax, [_kpi_values(res, c) * _scale(kpi) for c in cols],
                            [_scope_label(_split_col(c)[1]) for c in cols],
                            [_sector_colour(_split_col(c)[1], i) if c.split("|")[1] != "network"
                             else "0.3" for i, c in enumerate(cols)])
        ax.set_ylabel(kpi_label(kpi))
        ax.set_xlabel("scope")
        ax.set_title(KPI_UNITS.get(kpi, (kpi,))[0].capitalize(), fontsize=10)
        if kpi == "fill_rate":
            ax.set_ylim(min(ax.get_ylim()[0], 98), 101)
    _dist_legend(axes[0][0])
    fig.suptitle(f"KPIs over {res.reps} replications - {res.meta.get('scenario', '?')}")
    caption(fig, _mc_caption(res))
    return _finish(fig, path)


def plot_comparison(results_list: list, diffs=None, out_dir: str | Path | None = None) -> list:
    """Figures of a paired scenario comparison: fan charts side by side (one column per
    scenario, one row per sector) for fill rate and backorders, the distribution of each
    sector's fill rate with paired differences, and a forest plot of paired differences.
    Returns the written paths (or figures when *out_dir* is None)."""
    import pandas as pd

    results_list = list(results_list)
    out = Path(out_dir) if out_dir is not None else None
    written: list = []
    if diffs is None or len(diffs) == 0:
        from .experiment import paired_comparison
        parts = [paired_comparison(results_list[0], r) for r in results_list[1:]]
        diffs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    names = " vs ".join(str(r.meta.get("scenario", "?")) for r in results_list)
    for fam, fname in (("fill_rate", "compare_fan_fill_rate.png"),
                       ("backorders_t", "compare_fan_backorders.png")):
        series = sorted({n for r in results_list for n in r.series if _split_col(n)[0] == fam},
                        key=lambda n: (n != f"{fam}|sector:defense", n))
        if series:
            written.append(_fan_grid(results_list, series,
                                     f"{SERIES_UNITS[fam][0].capitalize()} by sector: {names}",
                                     out / fname if out else None))
    cols = _sector_cols(list(dict.fromkeys(c for r in results_list for c in r.per_rep.columns)))
    for c in cols:
        written.append(scenario_distributions(
            results_list, c,
            out / f"compare_dist_{_safe(c.replace('|', '_').replace('sector:', ''))}.png"
            if out else None))
    if len(diffs):
        cap = _mc_caption(results_list) + " | CIs: normal, 95%"
        written.append(forest_plot(diffs, out / "compare_forest.png" if out else None,
                                   caption_text=cap))
    return written


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------

def _param_unit(name: str) -> str:
    last = name.split(".")[-1]
    if last.endswith("_t_per_year"):
        return "t/yr"
    if last.endswith("_days") or last == "days":
        return "days"
    if "probability" in last or last in ("extend", "reinstate", "escalate"):
        return "probability"
    if last.endswith("_t") or ".initial." in name or last == "initial":
        return "t"
    if last == "share":
        return "share of orders"
    if last == "rate":
        return "ad valorem rate"
    if last == "factor":
        return "x"
    return ""


def _param_label(name: str, width: int = 40) -> str:
    """Short readable label for a dotted parameter path, with a unit guessed from its name."""
    parts = name.split(".")
    if parts[0] in ("scenario", "network") and len(parts) > 2:
        parts = parts[1:]
    if parts[0] in ("nodes", "controls", "lanes", "outages", "tariffs") and len(parts) > 2:
        text = f"{parts[1]}: {'.'.join(parts[2:])}"
    else:
        text = ".".join(parts)
    unit = _param_unit(name)
    text = _wrap_path(text, width) or name
    return f"{text} ({unit})" if unit else text


def _wrap_path(text: str, width: int) -> str:
    """Wrap a dotted path at dots (and spaces), never inside a word."""
    pieces = re.split(r"(?<=[. ])", text)
    lines, cur = [], ""
    for p in pieces:
        if cur and len(cur) + len(p) > width:
            lines.append(cur.rstrip())
            cur = ""
        cur += p
    if cur:
        lines.append(cur.rstrip())
    return "\n".join(lines)


def _fmt(v) -> str:
    """A parameter value as text: numbers compactly, anything else as is."""
    if isinstance(v, (bool, np.bool_)) or isinstance(v, str):
        return str(v)
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return str(v)


def _numeric(values) -> bool:
    try:
        np.asarray(list(values), dtype=float)
        return True
    except (TypeError, ValueError):
        return False


def _axis_values(series):
    """Sorted unique values of a parameter column and a mapping value -> coordinate."""
    uniq = list(dict.fromkeys(series.tolist()))
    if _numeric(uniq):
        uniq = sorted(uniq, key=float)
        return uniq, {u: float(u) for u in uniq}, True
    uniq = sorted(uniq, key=str)
    return uniq, {u: float(i) for i, u in enumerate(uniq)}, False


def _check_sweep(res, kpi_col: str, params: list[str]) -> None:
    if kpi_col not in res.table.columns:
        kc = [c for c in res.table.columns if "|" in c]
        raise KeyError(f"no KPI column {kpi_col!r}; e.g. {kc[:6]}")
    for p in params:
        if p not in res.table.columns:
            raise KeyError(f"{p!r} is not a swept parameter; parameters: {res.param_names}")


def sweep_heatmap(sweep_res, kpi_col: str, x: str, y: str, path: str | Path | None = None):
    """Mean of *kpi_col* over replications on the plane of two swept parameters: a colour map
    with labelled contour lines (a grid as cells; a Latin hypercube as a triangulated surface
    with its sample points). Other swept parameters, if any, are averaged over."""
    _check_sweep(sweep_res, kpi_col, [x, y])
    name, scope = _split_col(kpi_col)
    s = _scale(name)
    t = sweep_res.table
    g = t.groupby([x, y], sort=False)[kpi_col].mean().reset_index()
    xs, xmap, xnum = _axis_values(g[x])
    ys, ymap, ynum = _axis_values(g[y])
    fig, ax = plt.subplots(figsize=(8.5, 6.2))
    cmap = matplotlib.colormaps["RdYlGn" if name in ("fill_rate", "order_fill_rate") else "viridis"]
    fmt = "%.1f%%" if s == 100 else "%.3g"
    is_grid = len(g) == len(xs) * len(ys)
    vmin, vmax = (g[kpi_col].min() * s, g[kpi_col].max() * s) if len(g) else (0, 1)
    if vmin == vmax:
        vmin, vmax = vmin - 1, vmax + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # "no contour levels were found"
        if is_grid:
            Z = np.full((len(ys), len(xs)), np.nan)
            xi = {u: i for i, u in enumerate(xs)}
            yi = {u: i for i, u in enumerate(ys)}
            for _, r in g.iterrows():
                Z[yi[r[y]], xi[r[x]]] = r[kpi_col] * s
            # cells centred on the index positions; tick labels give the parameter values
            mesh = ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5, Z,
                                 cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
            if len(xs) >= 2 and len(ys) >= 2 and np.isfinite(Z).all():
                cs = ax.contour(np.arange(len(xs)), np.arange(len(ys)), Z, levels=6, colors="k",
                                linewidths=0.8)
                ax.clabel(cs, fmt=fmt, fontsize=7)
            if len(xs) * len(ys) <= 144:
                for (i, j), v in np.ndenumerate(Z):
                    if np.isfinite(v):
                        ax.text(j, i, fmt % v, ha="center", va="center", fontsize=7,
                                color="k", bbox=dict(boxstyle="round,pad=0.15", fc="white",
                                                     ec="none", alpha=0.6))
            ax.set_xticks(np.arange(len(xs)))
            ax.set_xticklabels([_fmt(v) for v in xs], fontsize=8)
            ax.set_yticks(np.arange(len(ys)))
            ax.set_yticklabels([_fmt(v) for v in ys], fontsize=8)
            note = "cells: mean over replications"
        else:
            X = np.array([xmap[v] for v in g[x]])
            Y = np.array([ymap[v] for v in g[y]])
            Z = g[kpi_col].to_numpy(float) * s
            mesh = ax.scatter(X, Y, c=Z, cmap=cmap, vmin=vmin, vmax=vmax, s=40, edgecolor="k",
                              lw=0.5, zorder=3)
            try:
                ax.tricontourf(X, Y, Z, levels=12, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.85)
                cs = ax.tricontour(X, Y, Z, levels=6, colors="k", linewidths=0.8)
                ax.clabel(cs, fmt=fmt, fontsize=7)
            except (ValueError, RuntimeError):     # too few or collinear points
                pass
            for lim, vals in ((ax.set_xlim, X), (ax.set_ylim, Y)):
                pad = 0.05 * (vals.max() - vals.min()) or 0.5
                lim(vals.min() - pad, vals.max() + pad)
            if not xnum:
                ax.set_xticks(range(len(xs)), [str(v) for v in xs])
            if not ynum:
                ax.set_yticks(range(len(ys)), [str(v) for v in ys])
            note = "dots: design points (mean over replications); surface: linear interpolation"
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label("mean " + kpi_label(kpi_col))
    ax.set_xlabel(_param_label(x))
    ax.set_ylabel(_param_label(y))
    ax.legend(handles=[Line2D([], [], color="k", lw=0.8, label="contour of the mean (labelled)")],
              fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12), framealpha=0.85)
    ax.set_title(f"Mean {KPI_UNITS.get(name, (name,))[0]}, {_scope_label(scope) or 'network'}, "
                 "over two swept parameters", fontsize=11)
    others = [p for p in sweep_res.param_names if p not in (x, y)]
    extra = note + (f"; averaged over {', '.join(others)}" if others else "")
    caption(fig, _sweep_caption(sweep_res, extra))
    return _finish(fig, path)


def sweep_lines(sweep_res, kpi_col: str, x: str, path: str | Path | None = None,
                by: str | None = None):
    """Mean of *kpi_col* against one swept parameter with a 95% CI ribbon over replications;
    one line per value of *by* if given. Other swept parameters are pooled."""
    _check_sweep(sweep_res, kpi_col, [x] + ([by] if by else []))
    name, scope = _split_col(kpi_col)
    s = _scale(name)
    t = sweep_res.table
    fig, ax = plt.subplots(figsize=(9, 5.2))
    groups = [(None, t)] if by is None else \
        [(v, t[t[by] == v]) for v in _axis_values(t[by])[0]]
    xs_all, xmap, xnum = _axis_values(t[x])
    for k, (bv, sub) in enumerate(groups):
        rows = []
        for xv, g in sub.groupby(x, sort=False):
            st = _summ(g[kpi_col].to_numpy(float))
            if st.get("n"):
                rows.append((xmap[xv], st["mean"] * s, st["ci95_low"] * s, st["ci95_high"] * s))
        if not rows:
            continue
        rows.sort()
        X, M, L, H = map(np.array, zip(*rows, strict=False))
        c = _sector_colour(scope, 0) if by is None else _colour(k)
        lab = f"mean ({kpi_label(kpi_col).split(' (')[0]})" if by is None else _fmt(bv)
        ax.fill_between(X, L, H, color=c, alpha=0.2, lw=0)
        ax.plot(X, M, marker="o", ms=4, color=c, lw=1.5, label=lab)
    ax.plot([], [], color="0.5", alpha=0.3, lw=8, label="95% CI of the mean")
    if not xnum:
        ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
    if name in ("fill_rate", "order_fill_rate"):
        lo = ax.get_ylim()[0]
        ax.set_ylim(max(-2, lo), 101)
    ax.set_xlabel(_param_label(x, 60))
    ax.set_ylabel(kpi_label(kpi_col))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", title=_param_label(by, 30) if by else None,
              title_fontsize=7, framealpha=0.85)
    ax.set_title(f"{_kpi_title(name)}, {_scope_label(scope) or 'network'}"
                 f" vs {_param_label(x, 60).split(' (')[0]}", fontsize=11)
    others = [p for p in sweep_res.param_names if p not in (x, by)]
    caption(fig, _sweep_caption(sweep_res, f"pooled over {', '.join(others)}" if others else ""))
    return _finish(fig, path)


def one_at_a_time(sweep_res, kpi_col: str, base_point: dict | None = None):
    """One-at-a-time sensitivities of *kpi_col* from a sweep, for :func:`tornado`.

    The base point gives every parameter the value most points share (a one-at-a-time design
    varies one parameter around it) or, when values are equally common (a grid), the middle of
    its sorted values. For each parameter, the points where all the others sit at their base
    values give the mean KPI at its lowest and highest value. When no such points exist (a
    Latin hypercube) the lowest and highest thirds of the parameter's range are used instead,
    pooled over the other parameters.

    Returns a DataFrame: parameter, low_value, high_value, low_value_kpi, high_value_kpi,
    base_kpi, span, method (``attrs`` hold kpi_col and a caption).
    """
    import pandas as pd

    _check_sweep(sweep_res, kpi_col, [])
    t = sweep_res.table
    params = list(sweep_res.param_names)
    base = dict(base_point or {})
    for p in params:
        if p in base:
            continue
        pts = t.drop_duplicates("point") if "point" in t else t
        counts = pts[p].value_counts()
        uniq, _, num = _axis_values(t[p])
        if len(counts) and counts.iloc[0] > counts.min():
            base[p] = counts.index[0]
        else:
            base[p] = uniq[(len(uniq) - 1) // 2]

    def at_base(df, skip=None):
        m = np.ones(len(df), dtype=bool)
        for q in params:
            if q != skip:
                m &= (df[q] == base[q]).to_numpy()
        return df[m]

    base_rows = at_base(t)
    base_kpi = float(base_rows[kpi_col].mean()) if len(base_rows) else float(t[kpi_col].mean())
    rows = []
    for p in params:
        sub = at_base(t, skip=p)
        uniq, _, num = _axis_values(t[p])
        if sub[p].nunique() >= 2:
            vals, _, _ = _axis_values(sub[p])
            lo_v, hi_v = vals[0], vals[-1]
            lo_k = float(sub.loc[sub[p] == lo_v, kpi_col].mean())
            hi_k = float(sub.loc[sub[p] == hi_v, kpi_col].mean())
            method = "others at base"
        elif num and len(uniq) >= 2:
            v = t[p].astype(float)
            q1, q2 = np.quantile(v, [1 / 3, 2 / 3])
            lo_v, hi_v = float(v[v <= q1].mean()), float(v[v >= q2].mean())
            lo_k = float(t.loc[v <= q1, kpi_col].mean())
            hi_k = float(t.loc[v >= q2, kpi_col].mean())
            method = "lowest vs highest third"
        else:
            continue
        rows.append({"parameter": p, "low_value": lo_v, "high_value": hi_v, "low_value_kpi": lo_k,
                     "high_value_kpi": hi_k, "base_kpi": base_kpi, "span": abs(hi_k - lo_k),
                     "method": method})
    df = pd.DataFrame(rows, columns=["parameter", "low_value", "high_value", "low_value_kpi",
                                     "high_value_kpi", "base_kpi", "span", "method"])
    df = df.sort_values("span", ascending=False, ignore_index=True)
    base_txt = ", ".join(f"{_param_label(p, 200).split(' (')[0]}={base[p]}" for p in params)
    df.attrs["kpi_col"] = kpi_col
    df.attrs["caption"] = _sweep_caption(sweep_res, f"base: {base_txt}")
    return df


def tornado(sensitivities, path: str | Path | None = None, *, kpi_col: str | None = None,
            caption_text: str | None = None):
    """One-at-a-time sensitivity bars, widest span on top: from the base KPI to the KPI with
    the parameter at its low and at its high value.

    *sensitivities*: the DataFrame of :func:`one_at_a_time`, or any DataFrame / list of tuples
    ``(parameter, low_value_kpi, high_value_kpi, base_kpi)``. KPI values are fractions for
    fill rates (drawn in percent, given *kpi_col* or ``attrs["kpi_col"]``)."""
    import pandas as pd

    if isinstance(sensitivities, pd.DataFrame):
        df = sensitivities.copy()
        attrs = dict(getattr(sensitivities, "attrs", {}) or {})
        ren = {"low": "low_value_kpi", "high": "high_value_kpi", "base": "base_kpi"}
        df = df.rename(columns={k: v for k, v in ren.items() if k in df and v not in df})
    else:
        attrs = {}
        df = pd.DataFrame([tuple(r)[:4] for r in sensitivities],
                          columns=["parameter", "low_value_kpi", "high_value_kpi", "base_kpi"])
    kpi_col = kpi_col or attrs.get("kpi_col")
    s = _scale(_split_col(kpi_col)[0]) if kpi_col else 1.0
    df["span"] = (df["high_value_kpi"] - df["low_value_kpi"]).abs()
    df = df.sort_values("span", ascending=True, ignore_index=True)     # widest drawn last = top
    fig, ax = plt.subplots(figsize=(11, 2.6 + 0.6 * max(2, len(df))))
    for i, r in df.iterrows():
        b, lo, hi = r["base_kpi"] * s, r["low_value_kpi"] * s, r["high_value_kpi"] * s
        ax.barh(i, lo - b, left=b, height=0.55, color="#4393c3",
                label="parameter at its low value" if i == 0 else None)
        ax.barh(i, hi - b, left=b, height=0.55, color="#d6604d", alpha=0.85,
                label="parameter at its high value" if i == 0 else None)
        for v, pv in ((lo, r.get("low_value")), (hi, r.get("high_value"))):
            if pv is not None and not (isinstance(pv, float) and math.isnan(pv)):
                txt = _fmt(pv)
                ax.annotate(txt, (v, i), xytext=(3 if v >= b else -3, 0),
                            textcoords="offset points", ha="left" if v >= b else "right",
                            va="center", fontsize=7, color="0.25")
    if len(df):
        ax.axvline(float(df["base_kpi"].iloc[0]) * s, color="k", lw=1, label="base point")
        vals = df[["low_value_kpi", "high_value_kpi", "base_kpi"]].to_numpy(float) * s
        lo_all, hi_all = float(np.nanmin(vals)), float(np.nanmax(vals))
        pad = 0.15 * (hi_all - lo_all) or 1.0
        ax.set_xlim(lo_all - pad, hi_all + pad)
    ax.set_yticks(range(len(df)))
    ax.set_yticklabels([_param_label(str(p), 34) for p in df["parameter"]], fontsize=8)
    ax.set_ylim(-0.7, max(len(df), 2) - 0.3)
    ax.set_xlabel(kpi_label(kpi_col) if kpi_col else "KPI")
    ax.set_ylabel("swept parameter")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.85,
              title="numbers: parameter value", title_fontsize=7)
    ax.set_title("One-at-a-time sensitivity" + (f": {kpi_label(kpi_col)}" if kpi_col else ""),
                 fontsize=11)
    caption(fig, caption_text or attrs.get("caption") or "one-at-a-time sensitivities")
    return _finish(fig, path)


def plot_sweep(res, out_dir: str | Path | None) -> list:
    """Figures of a sweep for the defense and civil sector fill rates: lines with a 95% CI
    ribbon (one parameter), or a heatmap of the first two parameters, lines of the first by the
    second and a tornado of one-at-a-time sensitivities (two or more)."""
    out = Path(out_dir) if out_dir is not None else None
    written: list = []
    if res.table is None or not len(res.table):
        return written
    cols = _sector_cols(res.table.columns) or \
        [c for c in ("fill_rate|network",) if c in res.table.columns]
    params = res.param_names
    for c in cols:
        tag = _safe(_scope_label(_split_col(c)[1]))
        if len(params) == 1:
            written.append(sweep_lines(res, c, params[0],
                                       out / f"sweep_lines_{tag}.png" if out else None))
        elif len(params) >= 2:
            written.append(sweep_heatmap(res, c, params[0], params[1],
                                         out / f"sweep_heatmap_{tag}.png" if out else None))
            if res.table[params[1]].nunique() <= 8:
                written.append(sweep_lines(res, c, params[0], out / f"sweep_lines_{tag}.png"
                                           if out else None, by=params[1]))
            sens = one_at_a_time(res, c)
            if len(sens):
                written.append(tornado(sens, out / f"sweep_tornado_{tag}.png" if out else None))
    return written


# ---------------------------------------------------------------------------------------------
# Network map
# ---------------------------------------------------------------------------------------------

def lane_flows(run) -> dict[str, float]:
    """Tonnes shipped per lane id in one :class:`~sim.results.Run` (for :func:`network_map`)."""
    return {l.id: float(l.log[:, 1].sum()) if len(l.log) else 0.0 for l in run.lanes}


def shortage_by_node(result) -> dict[str, float]:
    """1 - fill rate of every demand node, from a Run or (mean over replications) from
    :class:`~sim.experiment.MonteCarloResults` (for :func:`network_map`)."""
    out = {}
    if hasattr(result, "per_rep"):
        for c in result.per_rep.columns:
            if c.startswith("fill_rate|node:"):
                out[c.split(":", 1)[1]] = float(1.0 - result.per_rep[c].mean())
    else:
        for d in result.demand:
            out[d.node] = 1.0 - result.kpi("fill_rate", f"node:{d.node}")
    return out


def _network_layout(network):
    """x = tier (kind order), y = rank within the tier, grouped by country."""
    tiers: dict[int, list] = {}
    for nid, n in network.nodes.items():
        tiers.setdefault(KIND_ORDER.get(n.kind, 5), []).append(nid)
    country_rank = {c: i for i, c in enumerate(sorted({n.country for n in network.nodes.values()}))}
    pos = {}
    for tier, ids in tiers.items():
        ids.sort(key=lambda i: (country_rank[network.nodes[i].country], network.nodes[i].kind, i))
        k = len(ids)
        for r, nid in enumerate(ids):
            pos[nid] = (float(tier), (k - 1) / 2.0 - r)
    return pos, tiers


def network_map(network, path: str | Path | None = None, flows: dict | None = None,
                shortage: dict | None = None, *, result=None, caption_text: str | None = None):
    """Map-like drawing of a :class:`~sim.network.Network`: nodes by tier (mine -> processor ->
    magnet maker -> stockpile -> manufacturer / defense user), grouped and coloured by country,
    marker by kind; lanes as arrows coloured by material with width by tonnes shipped (*flows*:
    lane id -> t, e.g. :func:`lane_flows`) or else by order share; demand nodes filled by
    shortage (*shortage*: node -> 1 - fill rate, e.g. :func:`shortage_by_node`).

    *result* (a :class:`~sim.results.Run` or :class:`~sim.experiment.MonteCarloResults`)
    fills in the flows (Run only) and shortages not given, and the caption."""
    from matplotlib.colors import Normalize

    if result is not None:
        if flows is None and hasattr(result, "lanes"):
            flows = lane_flows(result)
        if shortage is None:
            shortage = shortage_by_node(result)
        if caption_text is None:
            if hasattr(result, "per_rep"):
                caption_text = _mc_caption(result) + " | shortage: mean over replications"
            else:
                caption_text = (f"scenario {result.scenario_name} | network {result.network_name}"
                                f" | 1 replication | seed {result.seed} (replication "
                                f"{result.replication}) | flows: tonnes shipped over the run")

    pos, tiers = _network_layout(network)
    countries = sorted({n.country for n in network.nodes.values()})
    if len(countries) <= len(_CYCLE):
        ccol = {c: _CYCLE[i] for i, c in enumerate(countries)}
    else:       # more countries than the ten-colour cycle: twenty distinct colours, then repeat
        pal = matplotlib.colormaps["tab20"]
        ccol = {c: pal(i % 20) for i, c in enumerate(countries)}
    mats = list(dict.fromkeys(l.material for l in network.lanes))
    mpal = matplotlib.colormaps["Dark2"]
    mcol = {m: mpal(i % 8) for i, m in enumerate(mats)}
    flows = {(k if isinstance(k, str) else f"{k[0]}->{k[1]}:{k[2]}"): float(v)
             for k, v in (flows or {}).items()}
    shortage = {str(k).removeprefix("node:"): float(v) for k, v in (shortage or {}).items()}
    max_rows = max(len(v) for v in tiers.values()) if tiers else 1
    fig = plt.figure(figsize=(13.5, max(5.0, 2.6 + 1.05 * max_rows)), layout="constrained")
    gs = fig.add_gridspec(1, 3, width_ratios=[1.0, 0.16, 0.018 if shortage else 0.001])
    ax = fig.add_subplot(gs[0, 0])
    lax = fig.add_subplot(gs[0, 1])
    lax.axis("off")

    # country groups: a shaded box around consecutive same-country nodes of a tier
    for tier, ids in tiers.items():
        run: list = []
        for nid in [*ids, None]:
            c = network.nodes[nid].country if nid else None
            if run and (c != network.nodes[run[0]].country):
                ys = [pos[i][1] for i in run]
                col = ccol[network.nodes[run[0]].country]
                ax.add_patch(FancyBboxPatch((tier - 0.3, min(ys) - 0.38), 0.6,
                                            max(ys) - min(ys) + 0.76,
                                            boxstyle="round,pad=0.02,rounding_size=0.12",
                                            fc=col, ec=col, alpha=0.10, lw=1, zorder=0))
                run = []
            if nid:
                run.append(nid)

    # lanes
    fmax = max(flows.values()) if flows else 0.0
    pairs: dict = {}
    for l in network.lanes:
        pairs.setdefault(tuple(sorted((l.src, l.dst))), []).append(l)
    for group in pairs.values():
        for k, l in enumerate(group):
            rad = 0.0 if len(group) == 1 else (k - (len(group) - 1) / 2) * 0.25
            if flows:
                f = flows.get(l.id, 0.0)
                lw = 0.6 + 7.0 * (f / fmax if fmax > 0 else 0.0)
            else:
                lw = 0.8 + 4.0 * l.share
            (x0, y0), (x1, y1) = pos[l.src], pos[l.dst]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=1,
                        arrowprops=dict(arrowstyle="-|>,head_length=0.6,head_width=0.3",
                                        lw=lw, color=mcol[l.material], alpha=0.8,
                                        shrinkA=14, shrinkB=14,
                                        connectionstyle=f"arc3,rad={rad}"))
            if flows:
                dx, dy = x1 - x0, y1 - y0
                mx, my = x0 + 0.36 * dx, y0 + 0.36 * dy     # not the middle: crossings share it
                mx, my = mx + rad * dy / 2, my - rad * dx / 2
                ax.text(mx, my, f"{flows.get(l.id, 0.0):,.0f} t", fontsize=6.5, ha="center",
                        va="center", color="0.15", zorder=4,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.75))

    # nodes
    smax = max(shortage.values()) if shortage else 0.0
    norm = Normalize(0.0, max(smax, 0.05) * 100)
    scmap = matplotlib.colormaps["Reds"]
    for nid, n in network.nodes.items():
        x, y = pos[nid]
        marker = KIND_MARKERS.get(n.kind, "o")
        if nid in shortage:
            face = scmap(norm(shortage[nid] * 100))
            ax.scatter([x], [y], s=420, marker=marker, c=[face], edgecolors=ccol[n.country],
                       linewidths=3, zorder=3)
        else:
            ax.scatter([x], [y], s=380, marker=marker, c=[ccol[n.country]], edgecolors="k",
                       linewidths=0.8, zorder=3)
        label = f"{nid}\n({n.country})"
        if nid in shortage:
            label += f"\nshortage {shortage[nid]:.1%}"
        ax.text(x, y - 0.2, label, ha="center", va="top", fontsize=7.5, zorder=5,
                bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.7))

    used = sorted(set(tiers))
    names = {0: "mine", 1: "processor", 2: "magnet maker", 3: "stockpile",
             4: "manufacturer /\ndefense user", 5: "other"}
    ax.set_xticks(used)
    ax.set_xticklabels([names[t] for t in used])
    ax.set_yticks([])
    ax.set_xlim(min(used) - 0.55, max(used) + 0.55)
    ax.set_ylim(-(max_rows - 1) / 2 - 0.85, (max_rows - 1) / 2 + 0.55)
    ax.set_xlabel("supply-chain tier (upstream -> downstream)")
    ax.set_ylabel("facilities, grouped by country")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)

    kinds = [k for k in KIND_MARKERS if any(n.kind == k for n in network.nodes.values())]
    h_kind = [Line2D([], [], marker=KIND_MARKERS[k], ls="", color="0.5", mec="k", ms=9,
                     label=k.replace("_", " ")) for k in kinds]
    h_country = [Patch(fc=ccol[c], ec="k", label=c) for c in countries]
    h_mat = [Line2D([], [], color=mcol[m], lw=3, label=m) for m in mats]
    if flows:
        h_w = [Line2D([], [], color="0.4", lw=0.6 + 7.0 * f, label=f"{fmax * f:,.0f} t shipped")
               for f in (0.25, 1.0)]
    else:
        h_w = [Line2D([], [], color="0.4", lw=0.8 + 4.0 * f, label=f"share {f:g}")
               for f in (0.25, 1.0)]
    def header(text):
        return Line2D([], [], ls="", marker="", label=text)

    handles = [header("kind"), *h_kind, header("country"), *h_country,
               header("lane material"), *h_mat, header("lane width"), *h_w]
    leg = lax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9,
                     borderaxespad=0, handlelength=2.2)
    for text in leg.get_texts():
        if text.get_text() in ("kind", "country", "lane material", "lane width"):
            text.set_fontweight("bold")
    if shortage:
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=scmap)
        cb = fig.colorbar(sm, cax=fig.add_subplot(gs[0, 2]))
        cb.set_label("shortage at demand node = 1 - fill rate (%)", fontsize=8)
    ax.set_title(f"Network '{network.name}': {len(network.nodes)} facilities, "
                 f"{len(network.lanes)} lanes"
                 + (" - lane width = tonnes shipped" if flows else " - lane width = order share"))
    if caption_text is None:
        caption_text = f"network {network.name} | " + (
            "flows / shortages as given by the caller" if flows or shortage else
            "structure only: no scenario, 0 replications, no seed")
    caption(fig, caption_text)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# Redrawing saved folders
# ---------------------------------------------------------------------------------------------

class _SavedRun:
    """What :func:`plot_run` needs, read back from a ``run`` folder (series + summary +
    manifest)."""

    def __init__(self, folder: Path) -> None:
        import pandas as pd

        folder = Path(folder)
        self.meta = json.loads((folder / "manifest.json").read_text()) \
            if (folder / "manifest.json").exists() else {}
        if (folder / "series.parquet").exists():
            df = pd.read_parquet(folder / "series.parquet")
        elif (folder / "series.csv").exists():
            df = pd.read_csv(folder / "series.csv")
        else:
            raise FileNotFoundError(f"{folder} has no series.csv or series.parquet")
        self.summary = pd.read_csv(folder / "summary.csv") if (folder / "summary.csv").exists() \
            else None
        self.network_name = str(self.meta.get("network", "?"))
        self.scenario_name = str(self.meta.get("scenario", folder.name))
        self.seed = self.meta.get("seed", "?")
        self.replication = self.meta.get("replication", 0)
        self.start = _start_of(self.meta)
        self.ndays = int(df["day"].max()) + 1 if len(df) else 0
        events = self.meta.get("policy_events")
        if events is None and (folder / "policy_events.json").exists():
            events = json.loads((folder / "policy_events.json").read_text())
        self.policy_events = [tuple(e) for e in (events or [])]
        dem = df[df["kind"].isin(DEMAND_KINDS) & df["sector"].notna()]
        tot = dem.groupby(["node", "material"])[["demand", "filled", "backorders"]].sum()
        tot = tot.sum(axis=1)
        keep = set(tot[tot > 0].index)
        dem = dem[[k in keep for k in zip(dem["node"], dem["material"], strict=False)]]
        self._sectors = {}
        for sector, g in dem.groupby("sector"):
            s = g.groupby("day")[["demand", "filled", "backorders", "inventory"]].sum()
            s = s.reindex(range(self.ndays), fill_value=0.0)
            self._sectors[str(sector)] = {k: s[k].to_numpy(float) for k in s.columns}

    def sector_series(self):
        return self._sectors

    def kpi(self, name: str, scope: str = "network") -> float:
        if self.summary is not None:
            hit = self.summary[(self.summary["kpi"] == name) & (self.summary["scope"] == scope)]
            if len(hit):
                return float(hit["value"].iloc[0])
        if name == "fill_rate" and scope.startswith("sector:"):
            s = self._sectors.get(scope.split(":", 1)[1])
            if s is not None and s["demand"].sum() > 0:
                return float(s["filled"].sum() / s["demand"].sum())
        return float("nan")


def replot(folder: str | Path, kind: str = "run") -> list[Path]:
    """Redraw the figures of a saved results folder; *kind* is the manifest's ``kind``:
    ``"run"`` (from series.csv; with a ``--compare`` sub-run also the comparison figure),
    ``"monte_carlo"``, ``"compare"`` (each scenario's sub-folder and the comparison figures)
    or ``"sweep"``. Returns the written paths."""
    folder = Path(folder)
    if kind == "monte_carlo":
        from .experiment import MonteCarloResults
        return plot_monte_carlo(MonteCarloResults.load(folder), folder)
    if kind == "sweep":
        from .sweep import SweepResults
        return plot_sweep(SweepResults.load(folder), folder)
    if kind == "compare":
        import pandas as pd

        from .experiment import MonteCarloResults
        meta = json.loads((folder / "manifest.json").read_text())
        results = [MonteCarloResults.load(folder / str(s)) for s in meta.get("scenarios", [])]
        written: list[Path] = []
        for r, s in zip(results, meta.get("scenarios", []), strict=False):
            written += plot_monte_carlo(r, folder / str(s))
        diffs_path = folder / "paired_differences.csv"
        diffs = pd.read_csv(diffs_path) if diffs_path.exists() and diffs_path.stat().st_size > 1 \
            else None
        if len(results) >= 1:
            written += plot_comparison(results, diffs, folder)
        return written
    if kind == "run":
        run = _SavedRun(folder)
        written = plot_run(run, folder)
        if (folder / "comparison.csv").exists():
            subs = [d for d in sorted(folder.iterdir()) if d.is_dir()
                    and (d / "manifest.json").exists()
                    and ((d / "series.csv").exists() or (d / "series.parquet").exists())]
            if subs:
                written += replot(subs[0], "run")
                written.append(plot_run_comparison([run, _SavedRun(subs[0])],
                                                   folder / "comparison.png"))
        return written
    raise ValueError(f"unknown results kind {kind!r}; expected run, monte_carlo, compare or sweep")
