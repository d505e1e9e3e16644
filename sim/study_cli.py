"""The plan-study commands of ``python -m sim``: ``compare --plans`` and ``robustness``.

``python -m sim compare --plans status-quo allied-capacity --scenarios truce-holds
truce-expires --reps 200`` runs every plan under every scenario on common random numbers
(:func:`sim.study.compare_plans`), saves the tables, then draws the figures.
``python -m sim robustness --plans ... --samples 20 --reps 30`` scores plans over a scenario
ensemble (:func:`sim.study.robustness`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from .errors import ModelError

__all__ = ["add_commands", "add_plan_options", "compare_command", "dispatch", "replot",
           "is_study_folder"]


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _default_out(tag: str) -> Path:
    from .paths import safe_name

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / safe_name(f"{stamp}-{tag}")


def add_plan_options(p) -> None:
    """The plan options of ``compare`` (``--plans``, ``--reference``, ``--no-replications``)."""
    p.add_argument("--plans", nargs="+", default=None, metavar="PLAN",
                   help="compare plans (names, paths, or a+b compositions) under each of "
                        "--scenarios (one is enough) on common random numbers")
    p.add_argument("--reference", default=None, metavar="PLAN",
                   help="with --plans: the plan differences are taken from (default status-quo "
                        "when listed, else the first plan)")
    p.add_argument("--no-replications", action="store_true",
                   help="with --plans: skip the per-replication table (it has plans x "
                        "scenarios x reps x KPIs rows)")


def add_commands(sub, shared_options=()) -> None:
    """Register ``robustness`` on the ``python -m sim`` sub-parser; *shared_options* are the
    functions that add the options every command shares (figure formats, table format), given
    by the CLI that registers it (this module does not import it: no import cycle)."""
    r = sub.add_parser("robustness", help="score plans across a scenario ensemble (regret)",
                       description="Run every plan in every member of a scenario ensemble (a "
                                   "Latin hypercube over parameter paths of --base, or the "
                                   "--scenarios given) on common random numbers; report each "
                                   "plan's regret against the best plan per scenario and the "
                                   "share of scenarios meeting --target.")
    r.add_argument("--network", default="rare_earth_2025", help="network name or TOML path")
    r.add_argument("--plans", nargs="+", required=True, metavar="PLAN", help="plans to score")
    r.add_argument("--scenarios", nargs="+", default=None, metavar="SCENARIO",
                   help="the ensemble as a list of scenarios (instead of a Latin hypercube)")
    r.add_argument("--base", default="truce-uncertain",
                   help="scenario the sampled parameters are applied to (default "
                        "truce-uncertain)")
    r.add_argument("--param", action="append", default=[], metavar="PATH=LOW:HIGH",
                   help="an uncertain parameter and its range (repeatable): a sweep path of "
                        "the scenario or network, demand.factor, or plan.delay_days; default: "
                        "truce renewal, approval probabilities, a demand factor and project "
                        "delays (sim.study.DEFAULT_UNCERTAINTIES, DEFAULT_PLAN_UNCERTAINTIES)")
    r.add_argument("--samples", type=_positive, default=20, help="ensemble members (default 20)")
    r.add_argument("--design-seed", type=int, default=0, help="seed of the Latin hypercube")
    r.add_argument("--kpi", default="fill_rate|sector:defense",
                   help="outcome KPI column (default fill_rate|sector:defense)")
    r.add_argument("--target", type=_number, default=0.99,
                   help="a plan meets the target when the outcome is at least this (at most, "
                        "with --lower-is-better; default 0.99)")
    r.add_argument("--lower-is-better", action="store_true",
                   help="the outcome is a loss (e.g. backordered_t|network)")
    r.add_argument("--reps", type=_positive, default=30, help="replications per plan and member")
    r.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    r.add_argument("--workers", type=_positive, default=None, help="worker processes")
    r.add_argument("--days", type=_number, default=None, help="horizon in days")
    r.add_argument("--out", type=Path, default=None, help="output folder (default results/<time>)")
    r.add_argument("--no-plots", action="store_true", help="skip the figures")
    r.add_argument("--quiet", dest="progress", action="store_false", default=None,
                   help="never show a progress bar")
    for add in shared_options:
        add(r)


def _draw(out: Path) -> list[str]:
    from .plots_study import draw_folder
    from .style import sibling_files

    return [n for p in draw_folder(out) for n in sibling_files(p)]


def _add_files(out: Path, files: list[str]) -> None:
    """Name the figures drawn after saving in the manifest (rewritten atomically)."""
    import json

    from .results import write_atomic

    man = out / "manifest.json"
    meta = json.loads(man.read_text())
    meta["files"] = sorted(set(meta.get("files", [])) | set(files))
    write_atomic(man, json.dumps(meta, indent=2, default=str))


def compare_command(args, executor=None) -> Path:
    """``compare --plans ...``: run, save (tables, manifest), then draw; print the headline
    differences. Returns the output folder."""
    from .paths import check_out_dir
    from .study import compare_plans

    out = check_out_dir(args.out or _default_out("plans-" + "-".join(args.plans)))
    res = compare_plans(args.network, args.plans, args.scenarios, reps=args.reps, seed=args.seed,
                        reference=args.reference, executor=executor, workers=args.workers,
                        chunk_size=args.chunk_size, horizon_days=args.days,
                        progress=args.progress)
    res.meta["command"] = " ".join(["python -m sim"] + sys.argv[1:])
    res.save(out, table_format=args.format, replications=not args.no_replications)
    if not args.no_plots:
        _add_files(out, _draw(out))
    _print_study(res)
    return out


def _print_study(res) -> None:
    d = res.differences(["fill_rate|sector:defense", "fill_rate|network",
                         "backordered_t|network"])
    print(f"{len(res.plans)} plans x {len(res.scenarios)} scenarios, {res.meta['reps']} "
          f"replications each (seed {res.meta['seed']}, common random numbers), "
          f"{res.meta['elapsed_seconds']:.1f} s")
    if len(d):
        w = d.pivot_table(index=["comparison", "kpi", "scope"], columns="statistic",
                          values="value", sort=False).reset_index()
        print(w[["comparison", "kpi", "scope", "difference", "ci95_low", "ci95_high"]]
              .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    ce = res.cost_effectiveness()
    ce = ce[ce["kpi"].str.startswith("cost_per") & (ce["statistic"] == "mean")]
    if len(ce):
        print("\ncost-effectiveness (US$ per unit of benefit; NaN: no benefit):")
        print(ce[["comparison", "kpi", "value", "label"]]
              .to_string(index=False, float_format=lambda x: f"{x:,.0f}"))


def _params(items: list[str]) -> dict | None:
    if not items:
        return None
    params = {}
    for item in items:
        path, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            params[path] = (float(lo), float(hi))
        except ValueError:
            sep2 = ""
        if not sep or not sep2 or not path:
            raise ModelError(f"expected PATH=LOW:HIGH, got {item!r}", field="--param")
    return params


def dispatch(args) -> int:
    """Run ``robustness``."""
    from .paths import check_out_dir
    from .study import robustness
    from .tables import check_format

    check_format(args.format)
    out = check_out_dir(args.out or _default_out("robustness-" + "-".join(args.plans)))
    res = robustness(args.network, args.plans, args.scenarios, base=args.base,
                     uncertainties=_params(args.param), samples=args.samples,
                     design_seed=args.design_seed, reps=args.reps, seed=args.seed, kpi=args.kpi,
                     higher_is_better=not args.lower_is_better, target=args.target,
                     workers=args.workers, horizon_days=args.days, progress=args.progress)
    res.meta["command"] = " ".join(["python -m sim"] + sys.argv[1:])
    res.save(out, table_format=args.format)
    if not args.no_plots:
        _add_files(out, _draw(out))
    print(f"robustness of {len(res.table)} plans over {len(res.members)} scenarios "
          f"({res.meta['reps']} reps each), outcome {res.meta['kpi']}, target "
          f"{res.meta['target']}:")
    print(res.table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(f"\nwrote {out}/")
    return 0


def is_study_folder(folder: Path) -> bool:
    """Whether *folder* holds a plan study or robustness result (its manifest's kind); any
    other folder, or one without a readable manifest, is left to ``plot``'s own checks."""
    import json

    try:
        meta = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("kind") in ("plan_study", "robustness")


def replot(folder: Path) -> int:
    """``python -m sim plot FOLDER`` for a plan study or robustness folder: draw its figures
    again from its tables (a damaged folder is a :class:`ModelError` naming it)."""
    from .plots_study import draw_folder

    from .cli_args import redraw
    return redraw(folder, draw_folder)
