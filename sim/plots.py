"""Figures, drawn from results only (never by running the model).

Every figure has a title, axis units, a legend and a caption line naming the scenario, the
number of replications and the seed. Functions return the :class:`matplotlib.figure.Figure`
(for notebooks) and, given ``path``, also write it as PNG.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_run", "plot_run_comparison", "mark_policy_events", "caption", "save_figure",
           "rolling_fill_rate"]

SECTOR_COLOURS = {"defense": "#b2182b", "automotive": "#2166ac", "wind": "#1b7837",
                  "electronics": "#762a83", "industrial": "#e08214"}


def caption(fig, text: str) -> None:
    """Put a caption line at the bottom of *fig*."""
    fig.text(0.01, 0.005, text, fontsize=7, color="0.35", ha="left", va="bottom")


def save_figure(fig, path: str | Path) -> Path:
    """Save *fig* as PNG atomically (temporary file, then rename) and close it."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    plt.close(fig)
    return path


def _dates(start: _dt.date, n: int) -> np.ndarray:
    return np.array([start + _dt.timedelta(days=i) for i in range(n)])


def mark_policy_events(ax, events, start: _dt.date, *, label: bool = True, max_labels: int = 12):
    """Draw vertical lines for policy events ``(day, kind, label)`` on a date axis."""
    seen = set()
    for i, (day, kind, text) in enumerate(events):
        x = start + _dt.timedelta(days=float(day))
        ax.axvline(x, color="0.4", lw=0.8, ls="--", zorder=0)
        if label and i < max_labels and (day, text) not in seen:
            seen.add((day, text))
            ax.text(x, 0.98, " " + text, rotation=90, va="top", ha="left", fontsize=6,
                    color="0.3", transform=ax.get_xaxis_transform())


def rolling_fill_rate(demand: np.ndarray, filled: np.ndarray, window: int = 30) -> np.ndarray:
    """Fill rate over a trailing window of *window* days (1 where there was no demand)."""
    k = np.ones(window)
    d = np.convolve(demand, k)[: len(demand)]
    f = np.convolve(filled, k)[: len(filled)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, f / np.where(d > 0, d, 1.0), 1.0)


def _format_date_axis(ax) -> None:
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=(4, 7, 10)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))


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
    for ax, run in zip(axes[0], runs):
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
