"""The figure style of the package: sizes, fonts, colour-blind-safe palettes and output formats.

Every figure of :mod:`sim.plots` is drawn inside :func:`figure_style` and written by
:func:`save_figure`, so one setting changes them all::

    from sim import plots, style
    with style.output(formats=("png", "pdf", "svg"), dpi=300, size="paper"):
        plots.plot_monte_carlo(res, "results/mc")

or per call: every public figure function of :mod:`sim.plots` also takes ``formats=``,
``dpi=`` and ``size=`` keywords. The command line has ``--figure-format png,pdf,svg``,
``--dpi`` and ``--figure-size`` on every command that draws.

Sizes (:data:`SIZES`): ``paper`` (the default: a journal page width, 7.2 in, 8.5 pt text),
``column`` (one journal column, 3.5 in, 7 pt; meant for single-panel figures) and ``slide``
(12 in, 15 pt). Each figure keeps its designed aspect; text never goes below about 6 pt.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies) for scenarios, sectors and series, extended with Paul Tol's "muted" and "dark"
colours where a figure needs more than eight (countries of the network map). Diverging data
use ``RdBu`` (blue = better, red = worse, white = no difference), sequential data ``viridis``
or ``Reds``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "SIZES", "OKABE_ITO", "SECTOR_COLOURS", "COUNTRY_COLOURS", "FORMATS", "Output",
    "country_colours", "current", "figsize", "figure_style", "output", "parse_formats",
    "save_figure", "styled", "colour",
]

FORMATS = ("png", "pdf", "svg")


@dataclass(frozen=True)
class _Size:
    width: float        # inches
    font: float         # base font size, points


SIZES = {
    "paper": _Size(7.2, 8.5),      # double-column / full text width of a journal page
    "column": _Size(3.5, 7.0),     # one journal column
    "slide": _Size(12.0, 15.0),    # 16:9 slide
}

# Okabe & Ito (2008), "Color Universal Design": safe for protanopia, deuteranopia, tritanopia.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000",
             "#F0E442"]
# Paul Tol's "muted" scheme (also colour-blind safe), for more categories than eight.
_TOL_MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
              "#882255", "#AA4499"]

SECTOR_COLOURS = {"defense": "#D55E00", "automotive": "#0072B2", "wind": "#009E73",
                  "electronics": "#CC79A7", "industrial": "#E69F00", "civil": "#56B4E9"}
# the countries of the shipped networks: the main actors get the strongest, most distinct hues
COUNTRY_COLOURS = {"CN": "#D55E00", "US": "#0072B2", "JP": "#CC79A7", "AU": "#E69F00",
                   "DE": "#009E73", "MY": "#56B4E9", "EE": "#332288", "FR": "#117733",
                   "VN": "#999933", "KR": "#882255", "IN": "#DDCC77", "MM": "#000000",
                   "TH": "#AA4499", "NG": "#44AA99"}


def colour(i: int) -> str:
    """The *i*-th colour of the Okabe-Ito cycle (scenarios, series)."""
    return OKABE_ITO[i % len(OKABE_ITO)]


def country_colours(countries) -> dict[str, str]:
    """A distinct colour per country: the fixed ones of :data:`COUNTRY_COLOURS`, then unused
    colours of the Okabe-Ito and Tol palettes, then (past 17 countries) ``tab20``."""
    out = {c: COUNTRY_COLOURS[c] for c in countries if c in COUNTRY_COLOURS}
    spare = [c for c in OKABE_ITO + _TOL_MUTED if c not in out.values()]
    rest = [c for c in countries if c not in out]
    for i, c in enumerate(rest):
        if i < len(spare):
            out[c] = spare[i]
        else:
            import matplotlib
            out[c] = matplotlib.colors.to_hex(matplotlib.colormaps["tab20"](i % 20))
    return out


@dataclass(frozen=True)
class Output:
    """Where figures go: file formats (the first is the one returned), resolution of raster
    formats, and the size preset. ``explicit``: formats were chosen (else a path's own
    suffix wins)."""

    formats: tuple[str, ...] = ("png",)
    dpi: float = 200.0
    size: str = "paper"
    explicit: bool = False


_current = Output()


def current() -> Output:
    """The output settings in force."""
    return _current


def parse_formats(text) -> tuple[str, ...]:
    """``"png,pdf"`` (or a list) -> ``("png", "pdf")``; raises :class:`~sim.errors.ModelError`
    naming an unknown format."""
    from .errors import ModelError

    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(str(f).strip().lower().lstrip(".") for f in items if str(f).strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ModelError(f"unknown figure format(s) {bad or text!r}; choose from "
                         f"{', '.join(FORMATS)} (comma-separated)", field="figure-format")
    return out


def _check(formats, dpi, size) -> dict:
    from .errors import ModelError

    kw = {}
    if formats is not None:
        kw["formats"] = parse_formats(formats)
        kw["explicit"] = True
    if dpi is not None:
        if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 20 <= dpi <= 2400:
            raise ModelError(f"must be a number from 20 to 2400, got {dpi!r}", field="dpi")
        kw["dpi"] = float(dpi)
    if size is not None:
        if size not in SIZES:
            raise ModelError(f"unknown figure size {size!r}; choose from {', '.join(SIZES)}",
                             field="figure-size")
        kw["size"] = size
    return kw


@contextlib.contextmanager
def output(formats=None, dpi=None, size=None):
    """Set the figure formats (``"png,pdf,svg"`` or a list), raster resolution (dots per inch)
    and size preset (:data:`SIZES`) for the figures drawn inside the block; None keeps the
    setting in force."""
    global _current
    kw = _check(formats, dpi, size)
    old = _current
    _current = replace(old, **kw)
    try:
        yield _current
    finally:
        _current = old


def rc(size: str | None = None) -> dict:
    """The rcParams of the package style for a size preset."""
    s = SIZES[size or _current.size]
    from cycler import cycler

    return {
        "font.size": s.font,
        "axes.titlesize": "large",
        "axes.labelsize": "medium",
        "xtick.labelsize": "small",
        "ytick.labelsize": "small",
        "legend.fontsize": "small",
        "legend.title_fontsize": "small",
        "figure.titlesize": "large",
        "axes.prop_cycle": cycler(color=OKABE_ITO),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,
        "grid.alpha": 0.3,
        "lines.linewidth": 1.4,
        "image.cmap": "viridis",
        "savefig.bbox": None,
        "pdf.fonttype": 42,          # TrueType in PDF: editable text, accepted by journals
        "ps.fonttype": 42,
        "svg.fonttype": "none",      # text stays text in SVG
        "axes.formatter.useoffset": False,     # no "+9.999e1" offsets on axes
        "axes.formatter.limits": (-4, 6),
    }


@contextlib.contextmanager
def figure_style(size: str | None = None):
    """Draw inside the package style (:func:`rc`) for a size preset."""
    import matplotlib.pyplot as plt

    with plt.rc_context(rc(size)):
        yield


def figsize(width: float, height: float) -> tuple[float, float]:
    """A figure designed at *width* x *height* inches (at 10 pt text) resized for the preset
    in force: to the preset's width, the height scaled less than the width when shrinking
    (text takes the same room at any width) and proportionally when growing."""
    s = SIZES[_current.size]
    k = s.width / width
    return s.width, height * (k ** 0.5 if k < 1 else k)


def styled(fn):
    """Decorator for figure functions: accepts ``formats=``, ``dpi=`` and ``size=`` keywords
    (see :func:`output`) and draws inside :func:`figure_style`."""
    @functools.wraps(fn)
    def wrapper(*args, formats=None, dpi=None, size=None, **kwargs):
        with output(formats, dpi, size), figure_style():
            return fn(*args, **kwargs)
    return wrapper


def save_figure(fig, path: str | Path) -> Path:
    """Write *fig* in every format in force (each atomically: a temporary file, then a rename)
    and close it. The files share *path*'s stem; returns the path of the first format. A
    *path* with a figure suffix and no formats chosen is written in that format only."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cur = _current
    formats = cur.formats
    if not cur.explicit and path.suffix.lstrip(".").lower() in FORMATS:
        formats = (path.suffix.lstrip(".").lower(),)
    written = []
    meta = {"png": {"Software": "rare-earth-sim"}, "pdf": {"Creator": "rare-earth-sim"},
            "svg": {"Creator": "rare-earth-sim"}}
    for f in formats:
        target = path.with_suffix("." + f)
        tmp = target.with_name(f".{target.stem}.tmp.{f}")
        fig.savefig(tmp, format=f, dpi=cur.dpi, metadata=meta[f])
        os.replace(tmp, target)
        written.append(target)
    plt.close(fig)
    return written[0]


def sibling_files(path: str | Path) -> list[str]:
    """The file names that :func:`save_figure` wrote for *path* under the settings in force."""
    path = Path(path)
    cur = _current
    formats = cur.formats if cur.explicit or path.suffix.lstrip(".") not in FORMATS \
        else (path.suffix.lstrip("."),)
    return [path.with_suffix("." + f).name for f in formats]
