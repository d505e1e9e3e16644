"""Figures of the stress test (:class:`sim.resilience.StressResults`): time to survive against
time to recover, and the ranking of disruptions by risk exposure.

Drawn from results only (never running the model), in the package style (:mod:`sim.style`),
with names from :mod:`sim.labels`. Each function takes ``formats=``, ``dpi=`` and ``size=``
keywords like those of :mod:`sim.plots` and returns the path written (first format).
"""

from __future__ import annotations

import math
import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from . import labels as _labels
from . import style as _style
from .errors import ModelError

__all__ = ["plot_tts_ttr", "plot_ranking", "plot_stress"]

# one colour and marker per disruption family
_KIND_STYLE = {"node": (_style.OKABE_ITO[0], "o", "supply node"),
               "country": (_style.OKABE_ITO[1], "s", "country (all its supply nodes)"),
               "lanes": (_style.OKABE_ITO[2], "^", "cross-border lanes (exporter, material)")}


def _times(res, scope: str):
    """Per disruption: kind, label, median and quartiles of TTS and TTR, P(TTS < TTR)."""
    g = res.per_rep[res.per_rep["scope"] == scope]
    if not len(g):
        scopes = sorted(set(res.per_rep["scope"]))
        raise ModelError(f"no scope {scope!r}; scopes: {', '.join(scopes)}", field="scope")
    kinds = {t["key"]: t["kind"] for t in res.targets()}
    rows = []
    for key, d in g.groupby("disruption", sort=False):
        tts, ttr = np.sort(d["tts_days"].to_numpy(float)), np.sort(d["ttr_days"].to_numpy(float))

        def q(v, p):        # nearest rank: defined where some values are inf
            return float(v[min(len(v) - 1, max(0, math.ceil(p * len(v)) - 1))])
        rows.append((key, kinds.get(key, "node"), res.label(key),
                     q(tts, .25), q(tts, .5), q(tts, .75), q(ttr, .25), q(ttr, .5), q(ttr, .75),
                     float(d["tts_lt_ttr"].mean())))
    return rows


def _caption_and_layout(fig, text: str, notes=()) -> None:
    """A wrapped caption at the bottom of *fig* and the axes laid out above it."""
    size = matplotlib.rcParams["font.size"] * 0.85
    width = max(40, int(fig.get_figwidth() * 72 / (size * 0.56)))
    lines: list[str] = []
    for part in [text, *[n for n in notes if n]]:
        lines += textwrap.wrap(part, width, break_on_hyphens=False) or [""]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=size, color="0.2", ha="left", va="bottom")
    space = min(0.45, (len(lines) * size * 1.25 + 5.0) / (fig.get_figheight() * 72.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # tight_layout on crowded legends
        fig.tight_layout(rect=(0, space, 1, 1))


def _money(usd: float) -> str:
    """``$3.92B``, ``$634.6M``, ``$12k``, ``$0``."""
    a = abs(usd)
    if a >= 1e9:
        return f"${usd / 1e9:,.2f}B"
    if a >= 1e6:
        return f"${usd / 1e6:,.1f}M"
    if a >= 1e3:
        return f"${usd / 1e3:,.0f}k"
    return f"${usd:,.0f}"


def _meta_text(res) -> str:
    m = res.meta
    plan = f", plan {m['plan']}" if m.get("plan") else ""
    return (f"Network {m['network']}, scenario {m['scenario']}{plan}; each disruption total from "
            f"{m['disruption_start']} for {m['duration_days']:g} days; {m['reps']} replications "
            f"on common random numbers, seed {m['seed']}.")


def _merge_same(rows):
    """Disruptions with the same medians and quartiles as one point, their labels joined (a
    country with one supply node is that node)."""
    out: dict = {}
    for r in rows:
        k = tuple(r[3:])
        if k in out:
            prev = out[k]
            out[k] = (prev[0], prev[1], f"{prev[2]}; {r[2]}", *prev[3:])
        else:
            out[k] = r
    return list(out.values())


@_style.styled
def plot_tts_ttr(res, path: str | Path, scope: str = "network") -> Path:
    """Scatter of the median time to survive (x) against the median time to recover (y) of
    each disruption in *scope*, with interquartile bars; above the diagonal TTS < TTR (needs
    mitigation). A TTS that is never reached (demand always met) is drawn at the right edge
    as an arrow."""
    rows = _merge_same(_times(res, scope))
    fig, ax = plt.subplots(figsize=_style.figsize(7.2, 5.4))
    finite = [v for r in rows for v in (r[3], r[4], r[5], r[6], r[7], r[8]) if math.isfinite(v)]
    top = max(finite + [float(res.meta["duration_days"])]) * 1.1 or 1.0
    edge = top * 1.02
    ax.fill_between([0, edge], [0, edge], [edge, edge], color="#D55E00", alpha=0.08, lw=0)
    ax.plot([0, edge], [0, edge], color="0.4", lw=0.8, ls="--")
    censored: list[str] = []
    unrecovered: list[str] = []
    placed: list[tuple[float, float]] = []
    for key, kind, label, s25, s50, s75, r25, r50, r75, p in rows:
        col, mark, _ = _KIND_STYLE.get(kind, ("0.3", "o", kind))
        x = min(s50, edge)
        y = min(r50, edge)
        if not math.isfinite(s50):
            censored += label.split("; ")
            ax.plot([x], [y], marker=">", color=col, ms=7, ls="none", alpha=0.8, clip_on=False)
            continue
        if not math.isfinite(r50):
            unrecovered.append(label)
            ax.annotate("", xy=(x, edge * 1.035), xytext=(x, y),
                        arrowprops={"arrowstyle": "->", "color": col, "lw": 1.0},
                        annotation_clip=False)
        ax.errorbar([x], [y], xerr=[[x - min(s25, edge)], [min(s75, edge) - x]],
                    yerr=[[y - min(r25, edge)], [min(r75, edge) - y]], marker=mark, color=col,
                    ms=6, lw=0.8, capsize=2, ls="none")
        # labels of points close together are stacked rather than drawn over each other
        near = sum(abs(x - px) < 0.04 * edge and abs(y - py) < 0.04 * edge for px, py in placed)
        placed.append((x, y))
        ax.annotate(label, (x, y), xytext=(5, 3 - 9 * near), textcoords="offset points",
                    fontsize="x-small")
    ax.set_xlim(-0.02 * edge, edge * 1.04)
    ax.set_ylim(-0.02 * edge, edge * 1.04)
    ax.set_xlabel(_labels.kpi_label("tts_days") + ", median (bars: quartiles)")
    ax.set_ylabel(_labels.kpi_label("ttr_days") + ", median")
    ax.set_title(f"Time to survive vs time to recover, {_labels.scope_label(scope)}")
    handles = [Line2D([], [], color=c, marker=m, ls="none", label=t)
               for k, (c, m, t) in _KIND_STYLE.items() if any(r[1] == k for r in rows)]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="#D55E00", alpha=0.15,
                                 label="TTS < TTR: needs mitigation"))
    ax.legend(handles=handles, loc="center right", fontsize="small", title="disruption")
    ax.grid(alpha=0.3)
    notes = []
    if unrecovered:
        notes.append("Not recovered within the run (median TTR drawn at the top edge, with "
                     f"an arrow): {'; '.join(unrecovered)}.")
    if censored:
        listed = "; ".join(censored) if len(censored) <= 8 else (
            f"{len(censored)} disruptions (see the ranking table)")
        notes.append("Demand always met in at least half the replications (median TTS never "
                     f"reached, drawn at the right edge, \u25b6): {listed}.")
    _caption_and_layout(fig, _meta_text(res) + " TTS: days until demand first goes unmet beyond the "
            f"undisrupted run; TTR: days until the fill rate is back to "
            f"{res.meta['threshold']:.0%} of the undisrupted run's for "
            f"{res.meta['dwell_days']:g} days.", notes=notes)
    return _style.save_figure(fig, path)


@_style.styled
def plot_ranking(res, path: str | Path, scope: str = "network", top: int = 25) -> Path:
    """Horizontal bars of the risk exposure index of the *top* disruptions in *scope* (worst
    = 1 at the top), each with its mean unmet value and P(TTS < TTR)."""
    rank = res.ranking(scope)
    hit = rank[rank["impact_usd"] > 0]
    # disruptions that left no demand unmet are counted in the caption, not drawn as empty bars
    shown = (hit if len(hit) else rank).head(int(top))
    n = len(shown)
    fig, ax = plt.subplots(figsize=_style.figsize(7.2, 1.2 + 0.28 * max(n, 3)))
    y = np.arange(n)[::-1]
    cols = [_KIND_STYLE.get(k, ("0.4",))[0] for k in shown["kind"]]
    ax.barh(y, shown["risk_exposure_index"], color=cols, height=0.7)
    for yi, (_, r) in zip(y, shown.iterrows()):
        ax.text(r["risk_exposure_index"] + 0.01, yi,
                f"{_money(r['impact_usd'])} unmet, P(TTS<TTR) {r['p_tts_lt_ttr']:.0%}",
                va="center", fontsize="x-small")
    ax.set_yticks(y, [f"{int(r)}. {lab}" for r, lab in zip(shown["rank"], shown["label"])])
    ax.set_xlim(0, 1.45)
    ax.set_xlabel(_labels.kpi_label("risk_exposure_index"))
    ax.set_title(f"Disruptions ranked by impact, {_labels.scope_label(scope)}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, label=t)
               for k, (c, _, t) in _KIND_STYLE.items() if k in set(shown["kind"])]
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    notes = []
    if len(hit) > n:
        notes.append(f"{len(hit) - n} lower-ranked disruptions not shown (see the ranking "
                     "table).")
    if not len(hit):
        notes.append("No disruption left demand unmet: every index is 0.")
    elif len(rank) > len(hit):
        notes.append(f"{len(rank) - len(hit)} disruptions left no demand unmet (index 0, not "
                     "drawn).")
    _caption_and_layout(fig, _meta_text(res) + " Impact: mean value of demand left unmet beyond the "
            "undisrupted run, from the disruption to the end of the run; index = impact / "
            "worst impact.", notes=notes)
    return _style.save_figure(fig, path)


def plot_stress(res, out_dir: str | Path, scope: str = "network") -> list[Path]:
    """Both stress-test figures into *out_dir*: ``tts_ttr`` and ``ranking``."""
    out = Path(out_dir)
    return [plot_tts_ttr(res, out / "tts_ttr.png", scope=scope),
            plot_ranking(res, out / "ranking.png", scope=scope)]
