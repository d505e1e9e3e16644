"""Figures, drawn from results only (never by running the model).

Every figure has a title, axis units, a legend and a caption naming the scenario, the number
of replications and the seed, with the key of the lettered policy-event markers. Names come
from the registry :mod:`sim.labels`; style, sizes and colours from :mod:`sim.style`. Functions
return the :class:`matplotlib.figure.Figure` (for notebooks) and, given ``path`` (or
``out_dir``), write it in the formats in force (PNG by default; every public figure function
takes ``formats=``, ``dpi=`` and ``size=``) and return the path(s) of the first format.

No figure of a constant: a series or KPI that is the same in every replication is left out of
its figure with a note in the caption, and a figure with nothing left is not drawn (the
function returns None, or an aggregate function leaves it out of its list, and a note goes to
stderr).

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
import sys
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

from . import kinds as _kinds
from . import kpis as _kpis
from . import labels as _labels
from . import style as _style

_size = _style.figsize

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

SECTOR_COLOURS = _style.SECTOR_COLOURS
_CYCLE = _style.OKABE_ITO

# readable names and units come from the registry (sim.labels); kept here under their old names
KPI_UNITS = _labels.KPIS
SERIES_UNITS = _labels.SERIES
PERCENT = _labels.PERCENT
# node kinds: the registry's (sim.kinds), kept here under their old names
KIND_ORDER = {k: spec.tier for k, spec in _kinds.NODE_KINDS.items()}
KIND_MARKERS = {k: spec.marker for k, spec in _kinds.NODE_KINDS.items()}
DEMAND_KINDS = _kinds.demand_kinds()


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

def caption(fig, text: str, events=None, notes=None) -> None:
    """Put a caption at the bottom of *fig* (wrapped to the figure's width): *text*, then the
    key of the lettered policy-event markers (*events*: ``(letter, label)`` pairs from
    :func:`mark_policy_events`) and one-line *notes* (e.g. what was left out and why)."""
    size = matplotlib.rcParams["font.size"] * 0.85
    width = max(40, int(fig.get_figwidth() * 72 / (size * 0.56)))
    parts = [str(text)[:1].upper() + str(text)[1:]]
    if events:
        parts.append("Events: " + "; ".join(f"{k} {lab}" for k, lab in events) + ".")
    parts += [str(n) for n in (notes or []) if n]
    lines = []
    for p in parts:
        lines += textwrap.wrap(p, width, break_on_hyphens=False) or [""]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=size, color="0.2", ha="left", va="bottom")
    fig._caption_lines = len(lines)
    fig._caption_size = size


def _caption_space(fig) -> float:
    """Fraction of the figure height that the caption needs at the bottom."""
    lines = getattr(fig, "_caption_lines", 1)
    size = getattr(fig, "_caption_size", 7.0)
    return min(0.45, (lines * size * 1.25 + 5.0) / (fig.get_figheight() * 72.0))


def save_figure(fig, path: str | Path) -> Path:
    """Save *fig* in the formats in force (:func:`sim.style.output`; PNG by default), each
    atomically, and close it; returns the path of the first format."""
    return _style.save_figure(fig, path)


def _skip(what: str, why: str) -> None:
    """Report a figure that is not drawn (a constant would look informative)."""
    print(f"note: {what} not drawn: {why}", file=sys.stderr)


def _constant(values) -> bool:
    """True when every finite value is the same (up to rounding), or there is none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return True
    return float(v.max() - v.min()) <= 1e-9 * max(1.0, float(abs(v).max()))


def _const_text(values, kpi: str) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "no data"
    return _fmt_value(float(v[0]), kpi)


def _tick(v: float) -> str:
    """A signed tick label of a difference axis: thousands separators, no exponents."""
    if not v:
        return "0"
    return f"{v:+,.0f}" if abs(v) >= 100 else f"{v:+.3g}"


def _fmt_value(v: float, kpi: str = "", *, signed: bool = False) -> str:
    """A KPI value as text, the same way in every figure: fractions in percent with one
    decimal, tonnes and days with thousands separators, other numbers to 3 significant
    digits."""
    if v is None or not np.isfinite(v):
        return "n/a"
    sign = "+" if signed else ""
    if kpi in PERCENT:
        return f"{v * 100:{sign},.1f}%" if not signed else f"{v * 100:+,.1f} pp"
    unit = _labels.kpi_unit(kpi)
    if unit in ("t", "days", "count", "USD") or abs(v) >= 1000:
        txt = f"{v:{sign},.0f}" if abs(v) >= 100 else f"{v:{sign},.1f}"
        return f"{txt} {unit}" if unit and unit != "count" else txt
    return f"{v:{sign}.3g}"


def _wrap_titles(fig) -> None:
    """Wrap the titles of the axes and the figure to the width they have (a narrow preset,
    e.g. ``column``, would cut long titles off)."""
    for ax in fig.axes:
        title = ax.title
        text = title.get_text()
        if not text or "\n" in text:
            continue
        width_pt = ax.get_position().width * fig.get_figwidth() * 72
        chars = max(20, int(width_pt / (title.get_fontsize() * 0.55)))
        if len(text) > chars:
            ax.set_title("\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)),
                         fontsize=title.get_fontsize())
    sup = fig._suptitle
    if sup is not None and "\n" not in sup.get_text():
        chars = max(20, int(fig.get_figwidth() * 72 / (sup.get_fontsize() * 0.55)))
        if len(sup.get_text()) > chars:
            sup.set_text("\n".join(textwrap.wrap(sup.get_text(), chars,
                                                  break_on_hyphens=False)))


def _finish(fig, path, *, rect=(0, None, 1, 1)):
    """Lay out *fig* above its caption; save it to *path* (returning the path) or return it."""
    _wrap_titles(fig)
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
MINOR_EVENT_NOTE = "Dotted lines: tariff steps and changes to licence rules."


def event_key(events, start: _dt.date, *, horizon: float | None = None) -> list[tuple]:
    """The lettered key of the major policy events: ``(letter, day, readable label)`` in date
    order, one letter per distinct (day, label) (so every panel letters the same events the
    same way). Tariff steps and rule changes get no letter (they are drawn dotted)."""
    seen = {}
    for day, kind, text in sorted(events, key=lambda e: (e[0], str(e[2]))):
        if kind not in MAJOR_EVENT_KINDS or (horizon is not None and day > horizon):
            continue
        lab = _labels.event_label(day, kind, text, start)
        seen.setdefault((float(day), lab), None)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [(letters[i] if i < 26 else f"Z{i - 25}", day, lab)
            for i, (day, lab) in enumerate(seen)]


def mark_policy_events(ax, events, start: _dt.date, *, label: bool = True,
                       max_labels: int | None = None, min_gap_days: float = 40.0):
    """Draw vertical lines for policy events ``(day, kind, text)`` on a date axis; returns the
    key ``[(letter, readable label)]`` for the caption (:func:`caption` ``events=``).

    Controls, the truce, outages, closures and surges are drawn as dashed lines, each with a
    letter at the top of the axis (letters closer than *min_gap_days* are staggered down in
    rows, so they never overlap); the readable labels ("Export licensing, 4 Apr 2025") go in
    the caption's key. Tariff steps and rule changes are light dotted lines without letters
    (explained by :data:`MINOR_EVENT_NOTE`). *label*: draw the letters (e.g. only on the top
    panel of a grid). *max_labels* is ignored (every major event is lettered)."""
    key = event_key(events, start)
    for day, kind, _text in events:
        if kind in MAJOR_EVENT_KINDS:
            continue
        ax.axvline(start + _dt.timedelta(days=float(day)), color="0.6", lw=0.6, ls=":",
                   zorder=0)
    last_day, row = -math.inf, 0
    drawn_days = set()
    for letter, day, _lab in key:
        x = start + _dt.timedelta(days=float(day))
        if day not in drawn_days:
            ax.axvline(x, color="0.3", lw=0.8, ls="--", zorder=0)
            drawn_days.add(day)
        if not label:
            continue
        row = row + 1 if day - last_day < min_gap_days else 0
        last_day = day
        ax.annotate(letter, (x, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, -2 - 10.5 * (row % 4)), textcoords="offset points",
                    ha="center", va="top", fontsize="x-small", fontweight="bold", color="0.1",
                    annotation_clip=True,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="0.4", lw=0.5))
    return [(k, lab) for k, _d, lab in key]


def _shared_key(keys: list, names: list, notes: list) -> tuple[list, list]:
    """One event key for panels of several scenarios: the key itself when every panel has
    the same, else one caption line per scenario."""
    keys = [k for k in keys if k is not None]
    if not keys or all(k == keys[0] for k in keys):
        return (keys[0] if keys else []), notes
    per = [f"Events, {n}: " + "; ".join(f"{a} {b}" for a, b in k) + "." for n, k in
           zip(names, keys, strict=False) if k]
    return [], per + notes


def _event_notes(events) -> list[str]:
    """The caption note for the dotted (minor) event lines, when there are any."""
    return [MINOR_EVENT_NOTE] if any(k not in MAJOR_EVENT_KINDS for _d, k, _t in events) else []


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
    return _labels.scope_label(scope)


def _split_col(col: str) -> tuple[str, str]:
    name, _, scope = col.partition("|")
    return name, scope


def _scale(kpi: str) -> float:
    return 100.0 if kpi in PERCENT else 1.0


def kpi_label(col: str, *, difference: bool = False) -> str:
    """Readable axis label with units for a KPI column ``"kpi|scope"`` (or a bare KPI name),
    from the registry :mod:`sim.labels`."""
    return _labels.kpi_label(col, difference=difference)


def _series_label(name: str) -> str:
    return _labels.series_label(name)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _colour(i: int) -> str:
    return _style.colour(i)


def _sector_colour(scope: str, i: int) -> str:
    name = str(scope).split(":", 1)[-1]
    return SECTOR_COLOURS.get(name, _colour(i))


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
    """Caption of a sweep figure: design, points, replications, scenario, network, seed."""
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
    t = _labels.kpi_name(name)
    return t[:1].upper() + t[1:]


def _summ(v: np.ndarray) -> dict:
    from .stats import summarise
    return summarise(np.asarray(v, dtype=float))


# ---------------------------------------------------------------------------------------------
# One replication
# ---------------------------------------------------------------------------------------------

@_style.styled
def plot_run(run, out_dir: str | Path | None = None, window: int = 30) -> list:
    """Stock cover and rolling fill rate over time by sector, with policy events marked.

    Stock is drawn as days of cover (net inventory over the sector's mean daily demand), so
    sectors of very different size share one readable axis. Sectors whose series are constant
    (e.g. a fill rate of 100% throughout) are left out of that panel with a note in the
    caption; with nothing left to draw the figure is skipped (an empty list)."""
    sec = run.sector_series()
    step = int(getattr(run, "step_days", 1))       # a saved weekly series: 7
    x = _dates(run.start, run.ndays * step)[step - 1::step]
    window = max(1, round(window / step)) * step
    notes: list[str] = []
    cover, rates = {}, {}
    for name in sorted(sec):
        s = sec[name]
        per_day = float(np.mean(s["demand"])) / step if len(s["demand"]) else 0.0
        if per_day > 0:
            cover[name] = (s["inventory"] - s["backorders"]) / per_day
        rates[name] = rolling_fill_rate(s["demand"], s["filled"], window // step) * 100
    flat_cover = [n for n, v in cover.items() if _constant(v)]
    flat_rate = [n for n, v in rates.items() if _constant(v)]
    if flat_rate:
        notes.append("Fill rate not drawn (constant): " + ", ".join(
            f"{n} {_const_text(rates[n], '')}%" for n in flat_rate) + ".")
    if flat_cover:
        notes.append("Stock cover not drawn (constant): " + ", ".join(flat_cover) + ".")
    show_cover = [n for n in cover if n not in flat_cover]
    show_rate = [n for n in rates if n not in flat_rate]
    if not show_cover and not show_rate:
        _skip(f"sector series of {run.scenario_name}", "every sector's series is constant")
        return []
    panels = [p for p, keep in (("cover", show_cover), ("rate", show_rate)) if keep]
    fig, axes = plt.subplots(len(panels), 1, figsize=_size(10, 2.2 + 2.6 * len(panels)),
                             sharex=True, squeeze=False)
    key = []
    for i, (ax, panel) in enumerate(zip(axes[:, 0], panels, strict=True)):
        names = show_cover if panel == "cover" else show_rate
        for name in names:
            y = cover[name] if panel == "cover" else rates[name]
            ax.plot(x, y, lw=1.2, label=name, color=SECTOR_COLOURS.get(name))
        if panel == "cover":
            ax.axhline(0, color="k", lw=0.6)
            ax.set_ylabel("Stock cover at demand nodes\n(days of mean demand;\n"
                          "negative = backorders)")
        else:
            ax.set_ylabel(f"Fill rate, trailing\n{window} days (%)")
            ax.set_ylim(-2, 102)
        key = mark_policy_events(ax, run.policy_events, run.start, label=i == 0)
        ax.legend(loc="lower left", title="sector", ncol=2)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("Date")
    _format_date_axis(axes[-1, 0])
    axes[0, 0].set_title(f"Stock and fill rate by sector: {run.scenario_name}")
    caption(fig, f"Scenario {run.scenario_name} | network {run.network_name} | 1 replication | "
                 f"seed {run.seed} (replication {run.replication}).", events=key,
            notes=_event_notes(run.policy_events) + notes)
    fig = _finish(fig, None)
    if out_dir is None:
        return [fig]
    return [save_figure(fig, Path(out_dir) / "sectors_over_time.png")]


@_style.styled
def plot_run_comparison(runs: list, path: str | Path | None = None, sectors=None, window: int = 30):
    """Side-by-side rolling fill rate by sector of several runs (e.g. two scenarios, same seed),
    one panel per run, with each run's policy events marked. Sectors constant at the same
    value in every run are left out (noted in the caption); with none left, nothing is drawn
    (returns None)."""
    rates = []
    for run in runs:
        sec = run.sector_series()
        step = int(getattr(run, "step_days", 1))
        rates.append({n: rolling_fill_rate(sec[n]["demand"], sec[n]["filled"],
                                           max(1, round(window / step))) * 100
                      for n in sorted(sec) if not sectors or n in sectors})
    names = sorted({n for r in rates for n in r})
    flat = [n for n in names if _constant(np.concatenate([r[n] for r in rates if n in r]))]
    keep = [n for n in names if n not in flat]
    if not keep:
        _skip("run comparison", "every sector's fill rate is the same constant in all runs")
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=_size(6 * len(runs), 4.5), sharey=True,
                             squeeze=False)
    keys: list = []
    for ax, run, rate in zip(axes[0], runs, rates, strict=False):
        step = int(getattr(run, "step_days", 1))
        x = _dates(run.start, run.ndays * step)[step - 1::step]
        for name in keep:
            if name in rate:
                ax.plot(x, rate[name], lw=1.2, color=SECTOR_COLOURS.get(name),
                        label=f"{name} "
                              f"({_fmt_value(run.kpi('fill_rate', f'sector:{name}'), 'fill_rate')})")
        keys.append(mark_policy_events(ax, run.policy_events, run.start))
        ax.set_title(run.scenario_name)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("Date")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", title="sector (fill rate over run)")
        _format_date_axis(ax)
    axes[0][0].set_ylabel(f"Fill rate, trailing {window} days (%)")
    fig.suptitle("Fill rate by sector: " + " vs ".join(r.scenario_name for r in runs))
    notes = [f"Not drawn (fill rate constant in every run): {', '.join(flat)}."] if flat else []
    key, notes = _shared_key(keys, [r.scenario_name for r in runs], notes)
    caption(fig, f"Scenarios {', '.join(r.scenario_name for r in runs)} | network "
                 f"{runs[0].network_name} | 1 replication each | seed {runs[0].seed}.",
            events=key, notes=_event_notes(runs[0].policy_events) + notes)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# Monte Carlo: fan charts and distributions
# ---------------------------------------------------------------------------------------------

def _draw_fan(ax, res, name: str, *, colour: str = "#0072B2", label_events: bool = True,
              legend: bool = True) -> list:
    """Quantile bands of one series on *ax*; returns the event key."""
    fam, _scope = _split_col(name)
    s = _scale(fam)
    arr = res.series.get(name)
    start = _start_of(res.meta)
    if arr is None or len(arr) == 0 or arr.shape[1] == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
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
    key = mark_policy_events(ax, res.policy_events, start, label=label_events)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="lower left" if fam == "fill_rate" else "upper left", ncol=2,
                  framealpha=0.85)
    _format_date_axis(ax)
    return key


def _series_constant(results, name: str) -> bool:
    arrs = [r.series[name] for r in results if name in r.series and r.series[name].size]
    return _constant(np.concatenate([a.ravel() for a in arrs])) if arrs else True


@_style.styled
def fan_chart(res, name: str, path: str | Path | None = None):
    """Quantile bands over replications (5-95%, 25-75%, median, mean) of one weekly series of
    a :class:`~sim.experiment.MonteCarloResults` (e.g. ``"fill_rate|sector:defense"``), with
    the scenario's policy events marked. Fill rates are drawn in percent. A series that is the
    same in every week and replication is not drawn (returns None, with a message)."""
    if name not in res.series:
        raise KeyError(f"no series {name!r}; available: {sorted(res.series)}")
    fam, scope = _split_col(name)
    if _series_constant([res], name):
        _skip(f"fan chart of {_labels.series_label(name).lower()}, {_scope_label(scope)}",
              f"constant at {_const_text(res.series[name], fam)} in every week and replication")
        return None
    fig, ax = plt.subplots(figsize=_size(10, 4.8))
    key = _draw_fan(ax, res, name, colour=_sector_colour(scope, 0))
    ax.set_ylabel(_series_label(name))
    ax.set_xlabel("Date (weekly grid)")
    ax.set_title(f"{_labels.SERIES.get(fam, (fam,))[0].capitalize()}, {_scope_label(scope)}: "
                 f"{res.meta.get('scenario', '?')}, {res.reps} replications")
    caption(fig, _mc_caption(res), events=key, notes=_event_notes(res.policy_events))
    return _finish(fig, path)


def _fan_grid(results: list, names: list[str], title: str, path, *, width: float = 10.0):
    """Rows = series names, columns = results (scenarios); shared y per row. Series constant
    in every scenario are left out (noted in the caption); with none left, None."""
    flat = [n for n in names if _series_constant(results, n)]
    names = [n for n in names if n not in flat]
    if not names:
        _skip(title, "every series is constant")
        return None
    nr, nc = len(names), len(results)
    fig, axes = plt.subplots(nr, nc, figsize=_size(max(width, 5.2 * nc), 1.4 + 2.2 * nr),
                             sharex=True, sharey="row", squeeze=False)
    keys: list = [None] * nc
    for i, name in enumerate(names):
        _fam, scope = _split_col(name)
        for j, res in enumerate(results):
            ax = axes[i][j]
            k = _draw_fan(ax, res, name, colour=_sector_colour(scope, i), label_events=(i == 0),
                          legend=(i == 0 and j == 0))
            keys[j] = keys[j] if keys[j] is not None else k
            if i == 0 and nc > 1:
                ax.set_title(str(res.meta.get("scenario", "?")), fontsize="medium")
            if j == 0:
                ax.set_ylabel(f"{_scope_label(scope)}:\n{_series_label(name)}".replace(
                    " at end of week", "\nat end of week").replace(" in the week", "\nin the week"),
                    fontsize="small")
            if i == nr - 1:
                ax.set_xlabel("Date (weekly grid)")
    fig.suptitle(title)
    notes = []
    if flat:
        notes.append("Not drawn (constant in every week and replication): " + ", ".join(
            f"{_scope_label(_split_col(n)[1])} at "
            f"{_const_text(results[0].series.get(n, []), _split_col(n)[0])}"
            for n in flat) + ".")
    key, notes = _shared_key(keys, [str(r.meta.get("scenario", "?")) for r in results], notes)
    caption(fig, _mc_caption(results), events=key,
            notes=_event_notes(results[0].policy_events) + notes)
    return _finish(fig, path)


def _draw_distributions(ax, datasets: list[np.ndarray], labels: list[str], colours: list[str],
                        *, seed: int = 0) -> None:
    """Violin (where there is spread) + box + jittered points + mean diamond, one per dataset."""
    rng = np.random.default_rng(seed)
    pos = np.arange(1, len(datasets) + 1)
    for p, v, c in zip(pos, datasets, colours, strict=False):
        v = v[np.isfinite(v)]
        if len(v) == 0:
            ax.text(p, 0.5, "no data", ha="center", va="center", fontsize="small",
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
    many = len(datasets) > 3              # narrow panels: slanted labels do not collide
    ax.set_xticklabels(["\n".join(textwrap.wrap(str(t), 18)) or "?" for t in labels],
                       fontsize="small", rotation=35 if many else 0,
                       ha="right" if many else "center", rotation_mode="anchor")
    ax.set_xlim(0.4, len(datasets) + 0.6)
    ax.grid(axis="y", alpha=0.3)
    if max(abs(v) for v in ax.get_ylim()) >= 1000:          # 60,000 rather than 60000
        ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))


def _dist_legend(ax, colour="0.4", *, outside: bool = False) -> None:
    handles = [Patch(facecolor=colour, alpha=0.25, label="distribution (violin)"),
               Patch(facecolor="white", edgecolor=colour, label="quartiles (box)"),
               Line2D([], [], marker="o", ls="", color=colour, ms=4, alpha=0.6,
                      label="one replication"),
               Line2D([], [], marker="D", ls="", mfc="white", mec="k", label="mean")]
    if outside:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.85)
    else:
        ax.legend(handles=handles, loc="best", framealpha=0.85)


def _kpi_values(res, col: str) -> np.ndarray:
    if col in res.per_rep.columns:
        return res.per_rep[col].to_numpy(dtype=float)
    return np.array([])


@_style.styled
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
    values = [_kpi_values(r, kpi_col) for r in results_list]
    if _constant(np.concatenate(values) if values else []):
        _skip(f"distribution of {kpi_label(kpi_col).lower()}",
              f"constant at {_const_text(np.concatenate(values), name)} in every replication "
              "and scenario")
        return None
    fig, axes = plt.subplots(1, 2 if paired else 1, figsize=_size(12 if paired else 7, 5),
                             squeeze=False,
                             gridspec_kw={"width_ratios": [1.2, 1]} if paired else None)
    ax = axes[0][0]
    _draw_distributions(ax, [_kpi_values(r, kpi_col) * s for r in results_list], names, colours)
    ax.set_ylabel(kpi_label(kpi_col))
    ax.set_xlabel("Scenario")
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
                         fontsize="x-small", va="center", ha="left")
        ax2.axhline(0, color="k", lw=0.8)
        ax2.set_xticks(np.arange(1, len(diffs) + 1))
        ax2.set_xticklabels(labels, fontsize="small")
        ax2.set_xlim(0.4, len(diffs) + 0.95)
        ax2.set_ylabel(kpi_label(kpi_col, difference=True).replace(" (", "\n("))
        ax2.set_xlabel("Comparison (paired by replication)")
        ax2.set_title(f"Paired difference vs {names[0]}")
        ax2.grid(axis="y", alpha=0.3)
        ax2.legend(fontsize="small", loc="best", framealpha=0.85)
    fig.suptitle(f"{_kpi_title(name)}, {_scope_label(scope)}: {' vs '.join(names)}")
    caption(fig, _mc_caption(results_list))
    return _finish(fig, path)


@_style.styled
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
    zero = df[(df["difference"] == 0) & (df["ci95_low"] == 0) & (df["ci95_high"] == 0)] \
        if len(df) else df
    df = df.drop(zero.index) if len(zero) else df
    if len(zero):
        gone = sorted({f"{_labels.kpi_name(k)} ({_scope_label(sc)})"
                       for k, sc in zip(zero["kpi"], zero["scope"], strict=False)})
        forest_note = ["No difference in any replication, not drawn: " + ", ".join(gone) + "."]
    else:
        forest_note = []
    if not len(df):
        _skip("forest plot", "no KPI differs between the scenarios in any replication")
        return None
    kp = [k for k in kpis if len(df) and (df["kpi"] == k).any()] or list(kpis[:1])
    n_scopes = df["scope"].nunique() if len(df) else 3
    fig, axes = plt.subplots(1, len(kp),
                             figsize=_size(4.6 * len(kp) + 1, 2.4 + 0.5 * max(3, n_scopes)),
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
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda v, _p: _tick(v)))
        ax.set_ylim(-0.6, max(0.6, len(scope_list) - 0.4))
        ax.invert_yaxis()
        unit = _labels.kpi_unit(k, difference=True)     # the panel's title names the KPI
        ax.set_xlabel("Difference" + (f"\n({unit})" if unit else ""))
        ax.set_title(_kpi_title(k), fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
        if not len(sub):
            ax.text(0.5, 0.5, "no paired differences", ha="center", va="center",
                    transform=ax.transAxes)
    axes[0][0].set_ylabel("Scope")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="k", lw=0.8))
    labels.append("no difference")
    axes[0][-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.03, 1.0),
                       title="mean with 95% CI", framealpha=0.85)
    fig.suptitle(f"Paired differences from {base} (common random numbers)")
    caption(fig, caption_text or (f"Scenarios {base}, {', '.join(map(str, others))} | "
                                  f"{int(df['n'].max()) if len(df) and 'n' in df else '?'} "
                                  "paired replications | CIs: normal, 95%"), notes=forest_note)
    return _finish(fig, path)


def _sector_cols(per_rep_cols, kpi: str = "fill_rate") -> list[str]:
    """``kpi|sector:*`` columns, defense first."""
    cols = [c for c in per_rep_cols if c.startswith(f"{kpi}|sector:")]
    return sorted(cols, key=lambda c: (c != f"{kpi}|sector:defense", c))


@_style.styled
def plot_monte_carlo(res, out_dir: str | Path | None) -> list:
    """Every figure of a Monte Carlo result: fan charts per series family (one panel per sector
    or tracked stock) and the distribution of the main KPIs over replications. Returns the
    written paths (or the figures when *out_dir* is None); figures of constants are skipped."""
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
                 f"{'stock' if fam == 'inventory_t' else 'sector'}: {scen}, quantile bands over "
                 f"{res.reps} replications")
        written.append(_fan_grid([res], names, title, out / fname if out else None))
    written.append(_kpi_distribution_figure(res, out / "kpi_distributions.png" if out else None))
    return [w for w in written if w is not None]


def _kpi_distribution_figure(res, path):
    panels, flat = [], []
    for kpi in ("fill_rate", "backordered_t", "stockout_days"):
        cols = ([f"{kpi}|network"] if f"{kpi}|network" in res.per_rep.columns else []) + \
            _sector_cols(res.per_rep.columns, kpi)
        keep = [c for c in cols if not _constant(_kpi_values(res, c))]
        flat += [c for c in cols if c not in keep]
        if keep:
            panels.append((kpi, keep))
    if not panels:
        _skip(f"KPI distributions of {res.meta.get('scenario', '?')}",
              "every KPI is constant over the replications")
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=_size(4.4 * len(panels) + 0.6, 4.8),
                             squeeze=False)
    for ax, (kpi, cols) in zip(axes[0], panels, strict=False):
        _draw_distributions(ax, [_kpi_values(res, c) * _scale(kpi) for c in cols],
                            [_scope_label(_split_col(c)[1]) for c in cols],
                            [_sector_colour(_split_col(c)[1], i) if c.split("|")[1] != "network"
                             else "0.3" for i, c in enumerate(cols)])
        ax.set_ylabel(kpi_label(kpi))
        ax.set_xlabel("Scope")
        ax.set_title(_kpi_title(kpi), fontsize="medium")
    _dist_legend(axes[0][-1], outside=True)
    fig.suptitle(f"KPIs over {res.reps} replications: {res.meta.get('scenario', '?')}")
    notes = []
    if flat:
        notes.append("Constant in every replication, not drawn: " + "; ".join(
            f"{_labels.kpi_name(_split_col(c)[0])}, {_scope_label(_split_col(c)[1])} = "
            f"{_const_text(_kpi_values(res, c), _split_col(c)[0])}" for c in flat) + ".")
    caption(fig, _mc_caption(res), notes=notes)
    return _finish(fig, path)


@_style.styled
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
        from .stats import paired_comparison
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
        cap = _mc_caption(results_list) + " | CIs: normal, 95%."
        written.append(forest_plot(diffs, out / "compare_forest.png" if out else None,
                                   caption_text=cap))
    return [w for w in written if w is not None]


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------

def _param_label(name: str, width: int = 40) -> str:
    """Readable label of a dotted parameter path with its unit (:func:`sim.labels.param_label`),
    wrapped at *width* characters."""
    if name is None:
        return ""
    return "\n".join(textwrap.wrap(_labels.param_label(name), width, break_on_hyphens=False))


def _fmt(v) -> str:
    """A parameter value as text: numbers compactly, anything else as is."""
    if isinstance(v, (bool, np.bool_)) or isinstance(v, str):
        return str(v)
    try:
        return f"{float(v):,g}"
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


LOWER_IS_BETTER_UNITS = ("t", "days", "USD", "day of run")


def _diverging(kpi: str):
    """Diverging colour map of differences: blue where the KPI is better than at the
    reference, red where worse, by the KPI's direction in the registry (sim.kpis; fill
    rates: higher is better; shortages, costs: lower; without a direction, as higher)."""
    spec = _kpis.KPI_TABLE.get(kpi)
    worse_up = spec.direction < 0 if spec is not None else \
        _labels.kpi_unit(kpi) in LOWER_IS_BETTER_UNITS
    return matplotlib.colormaps["RdBu_r" if worse_up else "RdBu"]


def _edges(values: list, numeric: bool) -> np.ndarray:
    """Cell edges around sorted values: midpoints between numeric values (the axis keeps the
    parameter's scale, unequal steps included), or index positions +- 0.5."""
    if not numeric or len(values) == 1:
        c = np.asarray([float(v) for v in values]) if numeric else \
            np.arange(len(values), dtype=float)
        half = 0.5 if not numeric else max(abs(c[0]) * 0.1, 0.5)
        return np.concatenate([c - half, c[-1:] + half]) if len(c) == 1 else \
            np.concatenate([[c[0] - 0.5], (c[:-1] + c[1:]) / 2, [c[-1] + 0.5]])
    c = np.asarray([float(v) for v in values])
    mid = (c[:-1] + c[1:]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _paired_cells(t, kpi_col: str, x: str, y: str, ref: tuple):
    """Per (x, y) cell: the mean paired difference of *kpi_col* from the reference cell, by
    replication (common random numbers; other parameters averaged within a replication), with
    its 95% CI and n."""
    g = t.groupby([x, y, "replication"], sort=False)[kpi_col].mean()
    base = g.xs(ref, level=[x, y]) if ref in {(a, b) for a, b, _r in g.index} else None
    out = {}
    for (xv, yv), cell in g.groupby(level=[0, 1], sort=False):
        v = cell.droplevel([0, 1])
        if base is None:
            continue
        common = v.index.intersection(base.index)
        d = v.loc[common].to_numpy(float) - base.loc[common].to_numpy(float)
        out[(xv, yv)] = _summ(d)
    return out


@_style.styled
def sweep_heatmap(sweep_res, kpi_col: str, x: str, y: str, path: str | Path | None = None,
                  *, reference: dict | None = None):
    """How *kpi_col* changes over the plane of two swept parameters.

    A grid is drawn as cells holding the mean paired difference from a reference point
    (*reference*: ``{x: value, y: value}``; default the lowest value of each) on a diverging
    scale centred on zero (blue better, red worse), with cells whose 95% CI includes zero
    hatched and greyed: the eye is drawn only to differences the replications support.
    Numeric parameters keep their scale (cells span midpoints between values; unequal steps
    stay unequal). Contour lines are drawn only on numeric grids of at least 5 x 5 values. A
    Latin hypercube is drawn as its design points coloured by the mean. Other swept parameters
    are averaged over. A KPI that is constant over the sweep is not drawn (None)."""
    import matplotlib.colors as mcolors
    from matplotlib.patches import Rectangle

    _check_sweep(sweep_res, kpi_col, [x, y])
    name, scope = _split_col(kpi_col)
    s = _scale(name)
    t = sweep_res.table
    if _constant(t[kpi_col]):
        _skip(f"heatmap of {kpi_label(kpi_col).lower()}",
              f"constant at {_const_text(t[kpi_col], name)} over the whole sweep")
        return None
    g = t.groupby([x, y], sort=False)[kpi_col].mean().reset_index()
    xs, xmap, xnum = _axis_values(g[x])
    ys, ymap, ynum = _axis_values(g[y])
    is_grid = len(g) == len(xs) * len(ys)
    fig, ax = plt.subplots(figsize=_size(8.5, 6.4))
    others = [p for p in sweep_res.param_names if p not in (x, y)]
    unit = _labels.kpi_unit(name, difference=True)
    if is_grid:
        ref = (reference or {}).get(x, xs[0]), (reference or {}).get(y, ys[0])
        cells = _paired_cells(t, kpi_col, x, y, ref)
        D = np.full((len(ys), len(xs)), np.nan)
        zero = np.zeros_like(D, dtype=bool)
        for (xv, yv), st in cells.items():
            i, j = ys.index(yv), xs.index(xv)
            D[i, j] = st.get("mean", np.nan) * s
            lo, hi = st.get("ci95_low", np.nan), st.get("ci95_high", np.nan)
            zero[i, j] = not (lo > 0 or hi < 0)
        lim = float(np.nanmax(np.abs(D))) if np.isfinite(D).any() else 0.0
        if lim == 0:
            _skip(f"heatmap of {kpi_label(kpi_col).lower()}",
                  "no point differs from the reference point in any replication")
            plt.close(fig)
            return None
        xe, ye = _edges(xs, xnum), _edges(ys, ynum)
        mesh = ax.pcolormesh(xe, ye, D, cmap=_diverging(name),
                             norm=mcolors.TwoSlopeNorm(0.0, -lim, lim), shading="flat")
        xc = [float(v) for v in xs] if xnum else list(range(len(xs)))
        yc = [float(v) for v in ys] if ynum else list(range(len(ys)))
        show_text = len(xs) * len(ys) <= 64
        for (i, j), v in np.ndenumerate(D):
            x0, x1, y0, y1 = xe[j], xe[j + 1], ye[i], ye[i + 1]
            is_ref = (xs[j], ys[i]) == ref
            if zero[i, j] and not is_ref:
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fc=(0.85, 0.85, 0.85, 0.75),
                                       ec="0.55", hatch="////", lw=0))
            if is_ref:
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fc="none", ec="k", lw=1.6))
            if show_text and np.isfinite(v):
                txt = "reference" if is_ref else _fmt_value(v / s, name, signed=True)
                ax.text(xc[j], yc[i], txt, ha="center", va="center", fontsize="small",
                        color="0.35" if zero[i, j] and not is_ref else "k",
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))
        if xnum and ynum and len(xs) >= 5 and len(ys) >= 5 and not show_text \
                and np.isfinite(D).all():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                cs = ax.contour(xc, yc, D, levels=5, colors="k", linewidths=0.7)
                ax.clabel(cs, fmt="%+.3g", fontsize="x-small")
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        if xnum:
            ax.set_xticks(xc, [_fmt(v) for v in xs])
        else:
            ax.set_xticks(xc, [str(v) for v in xs])
        if ynum:
            ax.set_yticks(yc, [_fmt(v) for v in ys])
        else:
            ax.set_yticks(yc, [str(v) for v in ys])
        cb = fig.colorbar(mesh, ax=ax)
        cb.set_label(f"{_labels.kpi_label(kpi_col, difference=True, unit=False)}\n"
                     f"from the reference point ({unit})" if unit else
                     f"{_labels.kpi_label(kpi_col, difference=True)} from the reference point")
        n = max((st.get("n", 0) for st in cells.values()), default=0)
        ref_txt = f"{_param_label(x, 200).split(' (')[0]} = {_fmt(ref[0])}, " \
                  f"{_param_label(y, 200).split(' (')[0]} = {_fmt(ref[1])}"
        note = (f"Cells: mean paired difference from the reference point ({ref_txt}) over "
                f"{n} replications (common random numbers). Hatched grey: the 95% CI of the "
                "difference includes zero.")
        ax.set_title(f"{_kpi_title(name)}, {_scope_label(scope)}: change over two parameters")
    else:
        X = np.array([xmap[v] for v in g[x]])
        Y = np.array([ymap[v] for v in g[y]])
        Z = g[kpi_col].to_numpy(float) * s
        se = t.groupby([x, y], sort=False)[kpi_col].sem().to_numpy(float) * s
        half = float(np.nanmedian(1.96 * se)) if len(se) else 0.0
        mid = (np.nanmax(Z) + np.nanmin(Z)) / 2
        spread = max((np.nanmax(Z) - np.nanmin(Z)) / 2, half, 1e-9)
        mesh = ax.scatter(X, Y, c=Z, cmap="viridis", vmin=mid - spread, vmax=mid + spread,
                          s=70, edgecolor="k", lw=0.5, zorder=3)
        for lim, vals in ((ax.set_xlim, X), (ax.set_ylim, Y)):
            pad = 0.05 * (vals.max() - vals.min()) or 0.5
            lim(vals.min() - pad, vals.max() + pad)
        if not xnum:
            ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        if not ynum:
            ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        cb = fig.colorbar(mesh, ax=ax)
        cb.set_label("Mean " + kpi_label(kpi_col)[:1].lower() + kpi_label(kpi_col)[1:])
        note = ("Dots: design points of a Latin hypercube, coloured by the mean over "
                "replications; the colour scale spans at least the typical 95% CI "
                f"(+-{half:.3g}), so noise is not painted as a gradient.")
        ax.set_title(f"{_kpi_title(name)}, {_scope_label(scope)}: mean at each design point")
    ax.set_xlabel(_param_label(x, 60))
    ax.set_ylabel(_param_label(y, 45))
    extra = note + (f" Averaged over {', '.join(_param_label(o, 200) for o in others)}."
                    if others else "")
    caption(fig, _sweep_caption(sweep_res), notes=[extra])
    return _finish(fig, path)


@_style.styled
def sweep_lines(sweep_res, kpi_col: str, x: str, path: str | Path | None = None,
                by: str | None = None):
    """Mean of *kpi_col* against one swept parameter (on its own numeric scale) with 95% CI
    error bars over replications; one line per value of *by* if given (dodged sideways, so
    the bars stay apart). Other swept parameters are pooled. A KPI constant over the sweep
    is not drawn (None)."""
    _check_sweep(sweep_res, kpi_col, [x] + ([by] if by else []))
    name, scope = _split_col(kpi_col)
    s = _scale(name)
    t = sweep_res.table
    if _constant(t[kpi_col]):
        _skip(f"lines of {kpi_label(kpi_col).lower()}",
              f"constant at {_const_text(t[kpi_col], name)} over the whole sweep")
        return None
    fig, ax = plt.subplots(figsize=_size(9, 5.2))
    groups = [(None, t)] if by is None else \
        [(v, t[t[by] == v]) for v in _axis_values(t[by])[0]]
    xs_all, xmap, xnum = _axis_values(t[x])
    span = (max(xmap.values()) - min(xmap.values())) or 1.0
    dodge = 0.012 * span if len(groups) > 1 else 0.0
    markers = "osD^vP*X"
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
        X = X + (k - (len(groups) - 1) / 2) * dodge
        c = _sector_colour(scope, 0) if by is None else _colour(k)
        lab = "mean" if by is None else _fmt(bv)
        ax.errorbar(X, M, yerr=[M - L, H - M], color=c, lw=1.5, marker=markers[k % 8], ms=5,
                    capsize=3, label=lab)
    if not xnum:
        ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
    else:
        ax.set_xticks([float(v) for v in xs_all], [_fmt(v) for v in xs_all])
    if name in ("fill_rate", "order_fill_rate"):
        lo = ax.get_ylim()[0]
        ax.set_ylim(max(-2, lo), 101)
    ax.set_xlabel(_param_label(x, 60))
    ax.set_ylabel(kpi_label(kpi_col))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", title=_param_label(by, 30) if by else None, framealpha=0.85)
    ax.set_title(f"{_kpi_title(name)}, {_scope_label(scope)}: by "
                 f"{_param_label(x, 200).split(' (')[0]}")
    others = [p for p in sweep_res.param_names if p not in (x, by)]
    notes = ["Markers: mean over replications; bars: 95% CI of the mean."]
    if others:
        notes.append(f"Pooled over {', '.join(_param_label(o, 200) for o in others)}.")
    caption(fig, _sweep_caption(sweep_res), notes=notes)
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
    base_kpi, span, method, and the 95% CI half-widths of the two means (low_ci, high_ci;
    over the replications that give each mean) (``attrs`` hold kpi_col and a caption).
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
            lo_s, hi_s = sub.loc[sub[p] == lo_v, kpi_col], sub.loc[sub[p] == hi_v, kpi_col]
            method = "others at base"
        elif num and len(uniq) >= 2:
            v = t[p].astype(float)
            q1, q2 = np.quantile(v, [1 / 3, 2 / 3])
            lo_v, hi_v = float(v[v <= q1].mean()), float(v[v >= q2].mean())
            lo_s, hi_s = t.loc[v <= q1, kpi_col], t.loc[v >= q2, kpi_col]
            method = "lowest vs highest third"
        else:
            continue
        lo_k, hi_k = float(lo_s.mean()), float(hi_s.mean())
        lo_ci = _summ(lo_s.to_numpy(float)).get("ci95_halfwidth", np.nan)
        hi_ci = _summ(hi_s.to_numpy(float)).get("ci95_halfwidth", np.nan)
        rows.append({"parameter": p, "low_value": lo_v, "high_value": hi_v, "low_value_kpi": lo_k,
                     "high_value_kpi": hi_k, "base_kpi": base_kpi, "span": abs(hi_k - lo_k),
                     "method": method, "low_ci": lo_ci, "high_ci": hi_ci})
    df = pd.DataFrame(rows, columns=["parameter", "low_value", "high_value", "low_value_kpi",
                                     "high_value_kpi", "base_kpi", "span", "method", "low_ci",
                                     "high_ci"])
    df = df.sort_values("span", ascending=False, ignore_index=True)
    base_txt = ", ".join(f"{_param_label(p, 200).split(' (')[0]} = {_fmt(base[p])}"
                         for p in params)
    df.attrs["kpi_col"] = kpi_col
    df.attrs["caption"] = _sweep_caption(sweep_res, f"base: {base_txt}")
    return df


@_style.styled
def tornado(sensitivities, path: str | Path | None = None, *, kpi_col: str | None = None,
            caption_text: str | None = None):
    """One-at-a-time sensitivity bars, widest span on top: from the base KPI to the KPI with
    the parameter at its low and at its high value, each end with its 95% CI (when the
    sensitivities carry ``low_ci`` / ``high_ci``, as :func:`one_at_a_time` gives them).

    *sensitivities*: the DataFrame of :func:`one_at_a_time`, or any DataFrame / list of tuples
    ``(parameter, low_value_kpi, high_value_kpi, base_kpi)``. KPI values are fractions for
    fill rates (drawn in percent, given *kpi_col* or ``attrs["kpi_col"]``). Parameters that
    change nothing are left out (noted in the caption); with none left, nothing is drawn
    (None)."""
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
    kname = _split_col(kpi_col)[0] if kpi_col else ""
    s = _scale(kname) if kpi_col else 1.0
    df["span"] = (df["high_value_kpi"] - df["low_value_kpi"]).abs()
    flat = df[(df["span"] <= 1e-12) & ((df["base_kpi"] - df["low_value_kpi"]).abs() <= 1e-12)]
    df = df.drop(flat.index)
    if not len(df):
        _skip("tornado" + (f" of {kpi_label(kpi_col).lower()}" if kpi_col else ""),
              "no parameter changes the KPI")
        return None
    df = df.sort_values("span", ascending=True, ignore_index=True)     # widest drawn last = top
    fig, ax = plt.subplots(figsize=_size(10, 2.4 + 0.6 * max(2, len(df))))
    has_ci = {"low_ci", "high_ci"} <= set(df.columns)
    lo_c, hi_c = _style.OKABE_ITO[5], _style.OKABE_ITO[1]
    for i, r in df.iterrows():
        b, lo, hi = r["base_kpi"] * s, r["low_value_kpi"] * s, r["high_value_kpi"] * s
        ax.barh(i, lo - b, left=b, height=0.55, color=lo_c,
                label="parameter at its low value" if i == 0 else None)
        ax.barh(i, hi - b, left=b, height=0.55, color=hi_c, alpha=0.85,
                label="parameter at its high value" if i == 0 else None)
        if has_ci:
            # the two ends' CIs a little apart (they overlap when the span is small)
            for v, ci, dy in ((lo, r["low_ci"], -0.12), (hi, r["high_ci"], 0.12)):
                if np.isfinite(ci):
                    ax.errorbar([v], [i + dy], xerr=[[ci * s], [ci * s]], fmt="none", ecolor="k",
                                capsize=2.5, lw=1, label="95% CI" if i == 0 and dy < 0 else None)
        for v, pv in ((lo, r.get("low_value")), (hi, r.get("high_value"))):
            if pv is not None and not (isinstance(pv, float) and math.isnan(pv)):
                unit = _labels.param_unit(str(r["parameter"]))
                txt = _fmt(pv) + (f" {unit}" if unit in ("t", "t/yr", "days") else "")
                ci = (r["low_ci"] if v == lo else r["high_ci"]) * s if has_ci else 0.0
                off = (ci if np.isfinite(ci) else 0.0) * (1 if v >= b else -1)
                ax.annotate(txt, (v + off, i), xytext=(4 if v >= b else -4, 0),
                            textcoords="offset points", ha="left" if v >= b else "right",
                            va="center", fontsize="small", color="0.25")
    ax.axvline(float(df["base_kpi"].iloc[0]) * s, color="k", lw=1, label="base point")
    vals = df[["low_value_kpi", "high_value_kpi", "base_kpi"]].to_numpy(float) * s
    if has_ci:
        cis = df[["low_ci", "high_ci"]].to_numpy(float) * s
        vals = np.concatenate([vals, df[["low_value_kpi", "high_value_kpi"]].to_numpy(float) * s
                               + np.nan_to_num(cis), df[["low_value_kpi", "high_value_kpi"]]
                               .to_numpy(float) * s - np.nan_to_num(cis)], axis=1)
    lo_all, hi_all = float(np.nanmin(vals)), float(np.nanmax(vals))
    pad = 0.25 * (hi_all - lo_all) or 1.0
    ax.set_xlim(lo_all - pad, hi_all + pad)
    ax.set_yticks(range(len(df)))
    ax.set_yticklabels([_param_label(str(p), 24) for p in df["parameter"]])
    ax.set_ylim(-0.7, max(len(df), 2) - 0.3)
    ax.set_xlabel(kpi_label(kpi_col) if kpi_col else "KPI")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.85,
              title="numbers: parameter value")
    ax.set_title("One-at-a-time sensitivity" + (f": {_kpi_title(kname)}, "
                                                f"{_scope_label(_split_col(kpi_col)[1])}"
                                                if kpi_col else ""))
    notes = []
    if len(flat):
        notes.append("No effect, not drawn: " + ", ".join(_param_label(str(p), 200)
                                                         for p in flat["parameter"]) + ".")
    caption(fig, caption_text or attrs.get("caption") or "One-at-a-time sensitivities.",
            notes=notes)
    return _finish(fig, path)


@_style.styled
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
    return [w for w in written if w is not None]


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
        tiers.setdefault(_kinds.kind_tier(n.kind), []).append(nid)
    country_rank = {c: i for i, c in enumerate(sorted({n.country for n in network.nodes.values()}))}
    pos = {}
    for tier, ids in tiers.items():
        ids.sort(key=lambda i: (country_rank[network.nodes[i].country], network.nodes[i].kind, i))
        k = len(ids)
        for r, nid in enumerate(ids):
            pos[nid] = (float(tier), (k - 1) / 2.0 - r)
    return pos, tiers


@_style.styled
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
    ccol = _style.country_colours(countries)
    mats = list(dict.fromkeys(l.material for l in network.lanes))
    mpal = matplotlib.colormaps["Dark2"]
    mcol = {m: mpal(i % 8) for i, m in enumerate(mats)}
    flows = {(k if isinstance(k, str) else f"{k[0]}->{k[1]}:{k[2]}"): float(v)
             for k, v in (flows or {}).items()}
    shortage = {str(k).removeprefix("node:"): float(v) for k, v in (shortage or {}).items()}
    max_rows = max(len(v) for v in tiers.values()) if tiers else 1
    # a map needs room: a landscape page (1.6 x the preset's width), however small the preset
    width = _style.SIZES[_style.current().size].width * 1.6
    fig = plt.figure(figsize=(width, min(width * 0.8, max(4.5, 2.4 + 0.42 * max_rows))),
                     layout="constrained")
    gs = fig.add_gridspec(1, 3, width_ratios=[1.0, 0.2, 0.018 if shortage else 0.001])
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

    # lanes: width by the square root of tonnes (flows span five orders of magnitude); only the
    # largest flows are labelled, so labels never pile up around a hub
    fmax = max(flows.values()) if flows else 0.0
    n_label = 12
    labelled = set(sorted(flows, key=flows.get, reverse=True)[:n_label]) if flows else set()

    def flow_width(f: float) -> float:
        return 0.4 + 6.0 * math.sqrt(f / fmax) if fmax > 0 else 0.4

    pairs: dict = {}
    for l in network.lanes:
        pairs.setdefault(tuple(sorted((l.src, l.dst))), []).append(l)
    for group in pairs.values():
        for k, l in enumerate(group):
            rad = 0.0 if len(group) == 1 else (k - (len(group) - 1) / 2) * 0.25
            if flows:
                f = flows.get(l.id, 0.0)
                lw = flow_width(f)
            else:
                lw = 0.5 + 3.0 * l.share
            (x0, y0), (x1, y1) = pos[l.src], pos[l.dst]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=1,
                        arrowprops=dict(arrowstyle="-|>,head_length=0.6,head_width=0.3",
                                        lw=lw, color=mcol[l.material], alpha=0.75,
                                        ls=":" if flows and not flows.get(l.id, 0.0) else "-",
                                        shrinkA=9, shrinkB=9,
                                        connectionstyle=f"arc3,rad={rad}"))
            if flows and l.id in labelled:
                dx, dy = x1 - x0, y1 - y0
                mx, my = x0 + 0.36 * dx, y0 + 0.36 * dy     # not the middle: crossings share it
                mx, my = mx + rad * dy / 2, my - rad * dx / 2
                ax.text(mx, my, f"{flows.get(l.id, 0.0):,.0f} t", fontsize="x-small", ha="center",
                        va="center", color="0.15", zorder=4,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.75))

    # nodes
    smax = max(shortage.values()) if shortage else 0.0
    norm = Normalize(0.0, max(smax, 0.05) * 100)
    scmap = matplotlib.colormaps["Reds"]
    for nid, n in network.nodes.items():
        x, y = pos[nid]
        marker = _kinds.kind_marker(n.kind)
        if nid in shortage:
            face = scmap(norm(shortage[nid] * 100))
            ax.scatter([x], [y], s=170, marker=marker, c=[face], edgecolors=ccol[n.country],
                       linewidths=2.2, zorder=3)
        else:
            ax.scatter([x], [y], s=150, marker=marker, c=[ccol[n.country]], edgecolors="k",
                       linewidths=0.6, zorder=3)
        label = _labels.node_label(nid, network)
        if nid in shortage:
            label += f": {_fmt_value(shortage[nid], 'fill_rate')} short"
        right = x >= max(tiers) - 0.01             # the last tier is labelled on its right
        ax.text(x + (0.12 if right else 0), y - (0 if right else 0.22), label,
                ha="left" if right else "center", va="center" if right else "top",
                fontsize="x-small", zorder=5,
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.75))

    used = sorted(set(tiers))
    ax.set_xticks(used)
    ax.set_xticklabels([_kinds.tier_label(t) for t in used])
    ax.set_yticks([])
    ax.set_xlim(min(used) - 0.55, max(used) + 1.25)
    ax.set_ylim(-(max_rows - 1) / 2 - 0.85, (max_rows - 1) / 2 + 0.55)
    ax.set_xlabel("Supply-chain tier (upstream to downstream)")
    ax.set_ylabel("Facilities, grouped by country")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)

    kinds = [k for k in _kinds.NODE_KINDS if any(n.kind == k for n in network.nodes.values())]
    h_kind = [Line2D([], [], marker=_kinds.kind_marker(k), ls="", color="0.5", mec="k", ms=9,
                     label=_kinds.kind_label(k)) for k in kinds]
    h_country = [Patch(fc=ccol[c], ec="k", label=_labels.country_label(c)) for c in countries]
    h_mat = [Line2D([], [], color=mcol[m], lw=3, label=_labels.material_label(m)) for m in mats]
    if flows:
        h_w = [Line2D([], [], color="0.4", lw=flow_width(fmax * f), label=f"{fmax * f:,.0f} t")
               for f in (0.01, 0.25, 1.0)]
        h_w.append(Line2D([], [], color="0.4", lw=0.6, ls=":", label="nothing shipped"))
    else:
        h_w = [Line2D([], [], color="0.4", lw=0.5 + 3.0 * f, label=f"share {f:g}")
               for f in (0.25, 1.0)]
    def header(text):
        return Line2D([], [], ls="", marker="", label=text)

    heads = ("Facility", "Country", "Lane material", "Shipped over the run" if flows else
             "Lane: share of orders")
    handles = [header(heads[0]), *h_kind, header(heads[1]), *h_country,
               header(heads[2]), *h_mat, header(heads[3]), *h_w]
    leg = lax.legend(handles=handles, loc="upper left", fontsize="x-small", framealpha=0.9,
                     borderaxespad=0, handlelength=2.2, ncol=1)
    for text in leg.get_texts():
        if text.get_text() in heads:
            text.set_fontweight("bold")
    if shortage:
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=scmap)
        cb = fig.colorbar(sm, cax=fig.add_subplot(gs[0, 2]))
        cb.set_label("Shortage at demand node = 1 - fill rate (%)", fontsize="small")
    ax.set_title(f"Supply network: {len(network.nodes)} facilities, "
                 f"{len(network.lanes)} lanes"
                 + ("; lane width: tonnes shipped" if flows else "; lane width: order share"))
    if caption_text is None:
        caption_text = f"network {network.name} | " + (
            "flows / shortages as given by the caller" if flows or shortage else
            "structure only: no scenario, 0 replications, no seed")
    notes = [f"Labels on the {min(n_label, len(flows))} largest flows; lane width grows with "
             "the square root of tonnes."] if flows else []
    caption(fig, caption_text, notes=notes)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------
# Redrawing saved folders
# ---------------------------------------------------------------------------------------------

class _SavedRun:
    """What :func:`plot_run` needs, read back from a ``run`` folder (series + summary +
    manifest)."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        self.meta = json.loads((folder / "manifest.json").read_text()) \
            if (folder / "manifest.json").exists() else {}
        from .tables import read_table

        df = read_table(folder / "series")
        has_summary = any((folder / f"summary.{e}").exists() for e in ("csv", "parquet"))
        self.summary = read_table(folder / "summary") if has_summary else None
        self.step_days = int(self.meta.get("series_step_days", 1))
        self.network_name = str(self.meta.get("network", "?"))
        self.scenario_name = str(self.meta.get("scenario", folder.name))
        self.seed = self.meta.get("seed", "?")
        self.replication = self.meta.get("replication", 0)
        self.start = _start_of(self.meta)
        # periods of the saved grid (days, or weeks of a weekly series)
        self.ndays = int(df["day"].max()) // self.step_days + 1 if len(df) else 0
        df = df.assign(day=df["day"] // self.step_days)
        events = self.meta.get("policy_events")
        if events is None and (folder / "policy_events.json").exists():
            events = json.loads((folder / "policy_events.json").read_text())
        self.policy_events = [tuple(e) for e in (events or [])]
        dem = df[df["kind"].isin(_kinds.demand_kinds()) & df["sector"].notna()
                 & ~df["sector"].isin(["", "none"])]
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

    def shortage(self) -> dict[str, float]:
        """1 - fill rate of each demand node, from the summary table."""
        if self.summary is None:
            return {}
        rows = self.summary[(self.summary["kpi"] == "fill_rate")
                            & self.summary["scope"].astype(str).str.startswith("node:")]
        return {str(sc).split(":", 1)[1]: 1.0 - float(v)
                for sc, v in zip(rows["scope"], rows["value"], strict=False)}

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


def _replot_map(folder: Path, meta: dict, result=None, shortage=None) -> list[Path]:
    """Redraw ``network_map.png`` of a results folder from the network its manifest names
    (a shipped name or a file); [] with a message when that network cannot be loaded."""
    from .errors import ModelError
    from .network import load_network

    name = meta.get("network_file") or meta.get("network")
    try:
        net = load_network(name)
    except (ModelError, OSError, TypeError) as exc:
        _skip(f"network map of {folder}", f"network {name!r} not found ({exc})")
        return []
    if meta.get("network_sha256") and net.digest() != meta["network_sha256"]:
        _skip(f"network map of {folder}", f"network {name!r} has changed since the run")
        return []
    if result is not None:
        return [network_map(net, folder / "network_map.png", result=result)]
    cap = (f"scenario {meta.get('scenario', '?')} | network {net.name} | 1 replication | seed "
           f"{meta.get('seed', '?')} (replication {meta.get('replication', 0)}) | flows are not "
           "saved with a run: lane width = order share")
    return [network_map(net, folder / "network_map.png", shortage=shortage, caption_text=cap)]


@_style.styled
def replot(folder: str | Path, kind: str = "run") -> list[Path]:
    """Redraw every figure of a saved results folder, the network map included; *kind* is the
    manifest's ``kind``: ``"run"`` (from the series table; with a ``--compare`` sub-run also
    the comparison figure), ``"monte_carlo"``, ``"compare"`` (each scenario's sub-folder and
    the comparison figures) or ``"sweep"``. Returns the written paths (first format of each
    figure; figures of constants are skipped)."""
    folder = Path(folder)
    meta = json.loads((folder / "manifest.json").read_text()) \
        if (folder / "manifest.json").exists() else {}
    # saved folders are read through sim.persist, never through the code that ran them
    from .persist import load_results, read_compare

    if kind == "monte_carlo":
        res = load_results(folder, "monte_carlo")
        return plot_monte_carlo(res, folder) + _replot_map(folder, meta, result=res)
    if kind == "sweep":
        return plot_sweep(load_results(folder, "sweep"), folder)
    if kind == "compare":
        # the sub-folders as written, never outside the folder whatever the manifest says
        saved = read_compare(folder)
        subs = saved.folders
        results = [load_results(s, "monte_carlo") for s in subs]
        written: list[Path] = []
        for r, s in zip(results, subs, strict=False):
            written += plot_monte_carlo(r, s)
            written += _replot_map(s, r.meta, result=r)
        diffs = saved.diffs
        if len(results) >= 1:
            written += plot_comparison(results, diffs, folder)
        return written
    if kind == "run":
        run = _SavedRun(folder)
        written = plot_run(run, folder)
        written += _replot_map(folder, run.meta, shortage=run.shortage())
        if any((folder / f"comparison.{e}").exists() for e in ("csv", "parquet")):
            subs = [d for d in sorted(folder.iterdir()) if d.is_dir()
                    and (d / "manifest.json").exists()
                    and any((d / f"series.{e}").exists() for e in ("csv", "parquet"))]
            if subs:
                written += replot(subs[0], "run")
                fig = plot_run_comparison([run, _SavedRun(subs[0])], folder / "comparison.png")
                written += [fig] if fig is not None else []
        return written
    raise ValueError(f"unknown results kind {kind!r}; expected run, monte_carlo, compare or sweep")
