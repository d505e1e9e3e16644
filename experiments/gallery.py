"""The figure gallery of the documentation: one figure of each type, from the shipped network
and scenarios, written to ``docs/gallery/`` as small PNGs and listed in ``docs/gallery.md``.

Covers: a single run (stock cover and fill rate by sector; the network map with flows), a
Monte Carlo comparison of ``truce-holds`` and ``truce-expires`` (fan charts, distributions with
paired differences, forest plot, KPI distributions) and a sweep of the truce renewal
probability and the US stockpile's initial magnets on ``truce-expires`` (heatmap of paired
differences, lines with CIs, tornado with CIs). Every figure uses the package style
(:mod:`sim.style`) and the registry's labels (:mod:`sim.labels`).

Run from the repository root (a few minutes on two cores)::

    python experiments/gallery.py                      # writes docs/gallery/*.png
    python experiments/gallery.py --out /tmp/gallery   # somewhere else

The PNGs are committed as documentation; keep them small (``--dpi``, default 90).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

from sim import plots, style
from sim.experiment import monte_carlo, paired_comparison
from sim.sweep import sweep

NETWORK = "rare_earth_2025"
BASE, OTHER = "truce-holds", "truce-expires"
SEED = 20251030
MC_REPS = 24
SWEEP_REPS = 4
P_RENEW = "truce.renewal_probability"
P_STOCK = "nodes.nds_us.initial.ndfeb_hre_magnet"
OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery"
MAX_BYTES = 150_000

# (file, heading, what it shows, how to draw it)
ENTRIES = [
    ("run_sectors.png", "One run: stock cover and fill rate by sector",
     "Net stock at the demand nodes in days of mean demand (so sectors of very different size "
     "share an axis) and the trailing 30-day fill rate; lettered markers are the policy events, "
     "explained in the caption.", "`python -m sim run`; `plots.plot_run(run)`"),
    ("network_map.png", "Network map with flows and shortages",
     "Facilities by tier, grouped and coloured by country; lanes coloured by material, width by "
     "the square root of tonnes shipped, the largest flows labelled; demand nodes filled by "
     "their shortage.", "`python -m sim run` / `mc`; `plots.network_map(net, result=run)`"),
    ("fan_fill_rate.png", "Fan charts of two scenarios",
     "Quantile bands (5-95%, 25-75%, median, mean) of the weekly fill rate by sector over "
     "replications, one column per scenario; constant series are left out with a note.",
     "`python -m sim compare`; `plots.plot_comparison(results)`"),
    ("distribution_automotive.png", "Distribution and paired differences",
     "One KPI over replications in each scenario (violin, box, points, mean) and the paired "
     "differences from the first scenario with the mean and its 95% CI.",
     "`plots.scenario_distributions(results, 'fill_rate|sector:automotive')`"),
    ("forest.png", "Forest plot of paired differences",
     "Paired differences (common random numbers) of the main KPIs by scope with 95% CIs.",
     "`python -m sim compare`; `plots.forest_plot(diffs)`"),
    ("kpi_distributions.png", "KPI distributions of one scenario",
     "Fill rate, backorders and stockout days over replications, by scope.",
     "`python -m sim mc`; `plots.plot_monte_carlo(res)`"),
    ("sweep_heatmap.png", "Sweep heatmap of paired differences",
     "Mean paired difference from a reference point on a diverging scale centred on zero; "
     "hatched grey cells: the 95% CI includes zero; numeric parameters on their own scale.",
     "`python -m sim sweep`; `plots.sweep_heatmap(res, kpi, x, y)`"),
    ("sweep_lines.png", "Sweep lines with confidence intervals",
     "Mean of a KPI against one parameter, one line per value of another, with 95% CI bars "
     "(dodged so they stay apart).", "`plots.sweep_lines(res, kpi, x, by=y)`"),
    ("sweep_tornado.png", "One-at-a-time sensitivity (tornado)",
     "From the base point to the KPI with each parameter at its low and high value, with the "
     "95% CI of each end.", "`plots.tornado(plots.one_at_a_time(res, kpi))`"),
]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    p.add_argument("--dpi", type=float, default=90, help="PNG resolution (default 90)")
    p.add_argument("--workers", type=int, default=None, help="worker processes")
    return p.parse_args(argv)


def draw(out: Path, workers) -> dict[str, Path]:
    """Run the examples and write one figure of each type; returns file -> path."""
    net = sim.load_network(NETWORK)
    written: dict[str, Path] = {}

    def keep(name, path):
        if path is not None:
            written[name] = path

    run = sim.simulate(net, OTHER, seed=SEED)
    figs = plots.plot_run(run, None)
    if figs:
        keep("run_sectors.png", plots.save_figure(figs[0], out / "run_sectors.png"))
    keep("network_map.png", plots.network_map(net, out / "network_map.png", result=run))

    results = [monte_carlo(net, s, reps=MC_REPS, seed=SEED, workers=workers)
               for s in (BASE, OTHER)]
    diffs = paired_comparison(results[0], results[1])
    figs = plots.plot_comparison(results, diffs, None)
    keep("fan_fill_rate.png", plots.save_figure(figs[0], out / "fan_fill_rate.png"))
    for f in figs[1:]:
        plots.plt.close(f)
    keep("distribution_automotive.png", plots.scenario_distributions(
        results, "fill_rate|sector:automotive", out / "distribution_automotive.png"))
    keep("forest.png", plots.forest_plot(diffs, out / "forest.png"))
    keep("kpi_distributions.png",
         plots._kpi_distribution_figure(results[1], out / "kpi_distributions.png"))

    stock = float(net.nodes["nds_us"].stocks["ndfeb_hre_magnet"].initial)
    res = sweep(net, OTHER, {P_RENEW: [0.0, 0.5, 1.0], P_STOCK: [0.0, stock, 4 * stock]},
                reps=SWEEP_REPS, seed=SEED, workers=workers, plots=False)
    # defense if the sweep moves it, else all users (a constant is never drawn)
    col = next((c for c in ("fill_rate|sector:defense", "fill_rate|network")
                if not plots._constant(res.table[c])), "fill_rate|network")
    keep("sweep_heatmap.png", plots.sweep_heatmap(res, col, P_RENEW, P_STOCK,
                                                  out / "sweep_heatmap.png"))
    keep("sweep_lines.png", plots.sweep_lines(res, col, P_RENEW, out / "sweep_lines.png",
                                              by=P_STOCK))
    keep("sweep_tornado.png", plots.tornado(plots.one_at_a_time(res, col),
                                            out / "sweep_tornado.png"))
    return written


def write_index(out: Path, written: dict[str, Path]) -> Path:
    """``gallery.md`` next to the folder of PNGs: one section per figure drawn."""
    lines = ["# Figure gallery", "",
             "One figure of each type, drawn from the shipped network `rare_earth_2025` and its "
             "scenarios by `python experiments/gallery.py` (which rewrites this page and the "
             f"PNGs in `{out.name}/`). Figures use the package style (`sim.style`: "
             "colour-blind-safe Okabe-Ito colours, `paper` size) and the readable names of "
             "`sim.labels`; every command that draws takes `--figure-format png,pdf,svg`, "
             "`--dpi` and `--figure-size paper|column|slide`. Sample sizes here are small "
             f"({MC_REPS} replications per scenario, {SWEEP_REPS} per sweep point): the "
             "figures show the types, not results to cite.", ""]
    for name, heading, what, how in ENTRIES:
        if name not in written:
            lines += [f"## {heading}", "", f"Not drawn for these examples (a constant). {how}",
                      ""]
            continue
        lines += [f"## {heading}", "", what, "", f"Drawn by {how}.", "",
                  f"![{heading}]({out.name}/{name})", ""]
    path = out.parent / "gallery.md"
    path.write_text("\n".join(lines))
    return path


def shrink(path: Path) -> None:
    """Store a PNG with a palette of 256 colours (a third of the bytes; figures have few
    colours), for the documentation's small files."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with style.output(formats="png", dpi=args.dpi, size="paper"):
        written = draw(args.out, args.workers)
    for p in written.values():
        shrink(p)
    index = write_index(args.out, written)
    big = [p for p in written.values() if p.stat().st_size > MAX_BYTES]
    for p in sorted(written.values()):
        print(f"{p}  {p.stat().st_size / 1000:.0f} kB")
    print(index)
    if big:
        print(f"warning: over {MAX_BYTES / 1000:.0f} kB: {[p.name for p in big]}; lower --dpi",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
