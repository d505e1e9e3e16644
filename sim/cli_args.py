"""Argument types and options shared by the commands of ``python -m sim``.

:mod:`sim.cli` (``run``, ``network``, ``scenario``) and every module of further commands
(:mod:`sim.experiment_cli` and the other ``*_cli`` modules) import them from here, so no
command module imports another to borrow its helpers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

__all__ = [
    "seed", "nonneg_int", "pos_int", "pos_float", "horizon", "out_path", "default_out",
    "add_figure_options", "add_format_option", "figure_output", "command_line",
    "record_figures",
]


def seed(text: str) -> int:
    """A root seed: a non-negative integer up to 2**63 - 1 (stored as a 64-bit integer)."""
    from .errors import MAX_SEED

    v = nonneg_int(text)
    if v > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most 2**63 - 1, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    """A non-negative integer argument."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return v


def pos_int(text: str) -> int:
    """A positive integer argument."""
    v = nonneg_int(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be a positive integer, got 0")
    return v


def pos_float(text: str) -> float:
    """A positive, finite number argument."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def horizon(text: str) -> float:
    """A horizon in days: a positive number up to :data:`~sim.errors.MAX_HORIZON_DAYS`."""
    from .errors import MAX_HORIZON_DAYS

    v = pos_float(text)
    if v > MAX_HORIZON_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_HORIZON_DAYS} days (100 years), "
                                         f"got {text!r}")
    return v


def out_path(text: str) -> Path:
    """An output folder argument: any non-empty path ('' would silently mean '.')."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a folder path, got {text!r}")
    return Path(text)


def default_out(tag: str) -> Path:
    """The default output folder of a command: ``results/<time>-<tag>`` (tag made safe)."""
    from .paths import safe_name

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    # the tag holds scenario names, written by whoever wrote the file: never a path as it is
    return Path("results") / safe_name(f"{stamp}-{tag}")


def add_figure_options(p) -> None:
    """``--figure-format``, ``--dpi`` and ``--figure-size`` (every command that draws)."""
    p.add_argument("--figure-format", default=None, metavar="png,pdf,svg",
                   help="figure file formats, comma-separated (default png)")
    p.add_argument("--dpi", type=pos_float, default=None,
                   help="resolution of PNG figures in dots per inch (default 200)")
    p.add_argument("--figure-size", choices=("paper", "column", "slide"), default=None,
                   help="figure size and text size preset (default paper: 7.2 in wide)")


def add_format_option(p) -> None:
    """``--format csv|parquet`` (every command that writes tables)."""
    p.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="format of the result tables (default csv; parquet needs pyarrow)")


def figure_output(args):
    """The :func:`sim.style.output` context for a command's figure options."""
    from .style import output
    return output(getattr(args, "figure_format", None), getattr(args, "dpi", None),
                  getattr(args, "figure_size", None))


def command_line() -> str:
    """The command as typed (for manifests): ``python -m sim`` and its arguments."""
    import sys

    return " ".join(["python -m sim"] + sys.argv[1:])


def record_figures(out_dir: str | Path, paths, *, sort: bool = False) -> list[str]:
    """List figures drawn into a saved folder (*paths*, as the plot functions return them;
    every format written of each) in its manifest (:func:`sim.persist.record_files`; *sort*
    for a Monte Carlo folder, whose list is sorted). Returns the names added."""
    from .persist import record_files
    from .style import sibling_files

    names = [n for p in paths for n in sibling_files(p)]
    record_files(out_dir, names, sort=sort)
    return names


def redraw(folder, draw) -> int:
    """``python -m sim plot FOLDER``: ``draw(folder)`` redraws the figures of a saved results
    folder and returns their paths, printed here. A folder changed by hand after it was
    written (a table missing or unreadable) is a :class:`~sim.errors.ModelError` naming the
    folder, not a traceback."""
    import zipfile

    from .errors import ModelError

    try:
        written = draw(folder)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError,
            zipfile.BadZipFile) as exc:
        raise ModelError(f"damaged results folder ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})",
                         file=str(folder)) from None
    for p in written:
        print(p)
    return 0
