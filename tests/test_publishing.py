"""Figures and tables a researcher can publish (issue 20): every figure type in every format,
no figure of a constant, readable labels from the registry (no raw ids, event markers that do
not overlap), one tidy table schema across commands that round-trips through CSV and Parquet,
a clean error for Parquet without pyarrow, and a manifest that agrees with the console."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import sim  # noqa: E402
from conftest import CONTROL_TOML  # noqa: E402
from sim import labels, plots, style, tables  # noqa: E402
from sim.experiment import monte_carlo, paired_comparison  # noqa: E402
from sim.network import load_network  # noqa: E402
from sim.sweep import sweep  # noqa: E402

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}
PARAMS = {"nodes.nds_us.initial.ndfeb_magnet": [0, 40],
          "nodes.magnets_jp.production.ndfeb_magnet.capacity_t_per_year": [500, 1200]}
DAYS = 730


def control():
    """Chinese licensing of Dy/Tb from April 2025 suspended by a truce from November 2025:
    the teaching network then runs short in some replications (the KPIs vary)."""
    import datetime as dt
    return sim.Scenario.from_dict({
        "scenario": {"name": "cn-control", "description": "test"},
        "controls": {"apr_2025": {"exporter": "CN", "elements": ["Dy", "Tb"],
                                  "destinations": "all", "start": dt.date(2025, 4, 4),
                                  "regime": "licensing", "review_days": 30,
                                  "approval_probability": 0.5}},
        "truce": {"suspends": ["apr_2025"], "start": dt.date(2025, 11, 10),
                  "duration_days": 365},
    })


@pytest.fixture(scope="module")
def mc_pair():
    base = monte_carlo("teaching", None, reps=6, seed=3, workers=1, horizon_days=DAYS)
    ctl = monte_carlo("teaching", control(), reps=6, seed=3, workers=1, horizon_days=DAYS)
    return base, ctl


@pytest.fixture(scope="module")
def grid():
    return sweep("teaching", control(), PARAMS, reps=3, seed=3, workers=1, plots=False,
                 horizon_days=DAYS)


@pytest.fixture(scope="module")
def run_and_net():
    net = load_network("teaching")
    return sim.simulate(net, control(), seed=3, horizon_days=DAYS), net


def _figures(mc_pair, grid, run_and_net) -> dict:
    """One figure of every type (as Figure objects), keyed by type."""
    base, ctl = mc_pair
    run, net = run_and_net
    x, y = list(PARAMS)
    col = "fill_rate|sector:automotive"
    return {
        "run": lambda: plots.plot_run(run)[0],
        "run_comparison": lambda: plots.plot_run_comparison(
            [run, sim.simulate(net, None, seed=3, horizon_days=DAYS)]) or
        plots.plot_run_comparison([run, sim.simulate(net, control(), seed=4, horizon_days=DAYS)]),
        "fan": lambda: plots.fan_chart(ctl, col),
        "fan_grid": lambda: plots.plot_comparison([base, ctl], None, None)[0],
        "distributions": lambda: plots.scenario_distributions([base, ctl], col),
        "forest": lambda: plots.forest_plot(paired_comparison(base, ctl)),
        "kpi_distributions": lambda: plots.plot_monte_carlo(ctl, None)[-1],
        "heatmap": lambda: plots.sweep_heatmap(grid, col, x, y),
        "lines": lambda: plots.sweep_lines(grid, col, x, by=y),
        "tornado": lambda: plots.tornado(plots.one_at_a_time(grid, col)),
        "network_map": lambda: plots.network_map(net, result=run),
    }


# ---------------------------------------------------------------------------------------------
# Formats and style
# ---------------------------------------------------------------------------------------------

def test_every_figure_type_in_every_format(mc_pair, grid, run_and_net, tmp_path):
    """Each figure type is written as PNG, PDF and SVG (one call, the formats chosen by the
    style's output setting), each file of its format and not trivially small; the returned
    path is the first format's."""
    figs = _figures(mc_pair, grid, run_and_net)
    with style.output(formats="png,pdf,svg", dpi=100):
        for kind, make in figs.items():
            fig = make()
            assert fig is not None, kind
            path = plots.save_figure(fig, tmp_path / f"{kind}.png")
            assert path == tmp_path / f"{kind}.png"
            for fmt, magic in MAGIC.items():
                f = tmp_path / f"{kind}.{fmt}"
                assert f.read_bytes()[:len(magic)] == magic, f
                assert f.stat().st_size > 3_000, f
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_api_keywords_and_sizes(mc_pair, tmp_path):
    """formats=, dpi= and size= work on a figure function; dpi sets the PNG's pixels; the
    slide size is wider than the paper size and the column size narrower; bad values are
    ModelErrors naming the option."""
    _, ctl = mc_pair
    col = "fill_rate|sector:automotive"
    p = plots.fan_chart(ctl, col, tmp_path / "fan.png", formats=["png", "svg"], dpi=50)
    assert (tmp_path / "fan.svg").exists() and not (tmp_path / "fan.pdf").exists()
    import matplotlib.image as mpimg
    w50 = mpimg.imread(p).shape[1]
    plots.fan_chart(ctl, col, tmp_path / "fan100.png", dpi=100)
    assert mpimg.imread(tmp_path / "fan100.png").shape[1] == pytest.approx(2 * w50, abs=2)
    widths = {}
    for size in ("column", "paper", "slide"):
        fig = plots.fan_chart(ctl, col, size=size)
        widths[size] = fig.get_figwidth()
        assert fig.get_figwidth() == pytest.approx(style.SIZES[size].width)
        plt.close(fig)
    assert widths["column"] < widths["paper"] < widths["slide"]
    with pytest.raises(sim.ModelError, match="figure-format"):
        plots.fan_chart(ctl, col, formats="png,gif")
    with pytest.raises(sim.ModelError, match="dpi"):
        plots.fan_chart(ctl, col, dpi=0)


def test_country_colours_are_distinct():
    """Every country of the shipped network gets its own colour, and no two are near-identical
    (a minimum distance in RGB)."""
    net = load_network("rare_earth_2025")
    countries = sorted({n.country for n in net.nodes.values()})
    cols = style.country_colours(countries)
    rgb = np.array([matplotlib.colors.to_rgb(cols[c]) for c in countries])
    assert len({tuple(r) for r in rgb}) == len(countries)
    d = np.sqrt(((rgb[:, None, :] - rgb[None, :, :]) ** 2).sum(-1))
    d[np.diag_indices(len(countries))] = np.inf
    assert d.min() > 0.15, d.min()


# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

def _flat(res):
    """*res* with every series and KPI made constant."""
    series = {k: np.full_like(v, 1.0) for k, v in res.series.items()}
    per_rep = res.per_rep.copy()
    per_rep.loc[:, :] = 1.0
    return dataclasses.replace(res, series=series, per_rep=per_rep)


def test_constant_series_are_not_drawn(mc_pair, grid, capsys):
    """A constant series gives no fan chart (None and a message), a constant row of a fan grid
    is left out with a caption note, a constant KPI gives no distribution, heatmap, lines or
    tornado; a whole Monte Carlo result of constants gives no figure at all."""
    base, ctl = mc_pair
    flat = _flat(ctl)
    col = "fill_rate|sector:defense"
    assert plots.fan_chart(flat, col) is None
    assert "not drawn" in capsys.readouterr().err
    assert plots.plot_monte_carlo(flat, None) == []
    assert plots.scenario_distributions([flat, flat], col) is None
    # one constant row among varying ones: left out, named in the caption
    mixed = dict(ctl.series)
    mixed["fill_rate|sector:defense"] = np.full_like(mixed["fill_rate|sector:defense"], 1.0)
    res = dataclasses.replace(ctl, series=mixed)
    fig = plots._fan_grid([res], ["fill_rate|sector:defense", "fill_rate|sector:automotive"],
                          "t", None)
    assert len(fig.axes) == 1
    text = " ".join(t.get_text() for t in fig.texts)
    assert "Not drawn (constant" in text and "defense at 100.0%" in text
    plt.close(fig)
    t = grid.table.copy()
    t["fill_rate|sector:automotive"] = 0.5
    g2 = dataclasses.replace(grid, table=t)
    x, y = list(PARAMS)
    assert plots.sweep_heatmap(g2, "fill_rate|sector:automotive", x, y) is None
    assert plots.sweep_lines(g2, "fill_rate|sector:automotive", x) is None
    assert plots.tornado(plots.one_at_a_time(g2, "fill_rate|sector:automotive")) is None


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------

def _texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()] + [leg.get_title().get_text()]
    if fig._suptitle is not None:
        out.append(fig._suptitle.get_text())
    return [t for t in out if t]


def test_labels_come_from_the_registry(mc_pair, grid, run_and_net):
    """No title, axis label, tick label, legend or caption of any figure type holds a raw id
    (a snake_case name, ``kpi|scope`` or ``sector:x``)."""
    for kind, make in _figures(mc_pair, grid, run_and_net).items():
        fig = make()
        raw = [(t, labels.raw_ids(t)) for t in _texts(fig) if labels.raw_ids(t)]
        plt.close(fig)
        assert not raw, (kind, raw)


def test_registry_labels():
    """The registry's readable names, and a one-line entry is all a new KPI needs."""
    assert labels.event_label(93.0, "control", "apr_2025 (licensing)", "2025-01-01") == \
        "Export licensing, 4 Apr 2025"
    assert labels.event_label(313.0, "truce", "truce starts", "2025-01-01") == \
        "Truce begins, 10 Nov 2025"
    assert labels.param_label("nodes.nds_us.initial.ndfeb_magnet") == \
        "US stockpile, initial magnets (t)"
    assert labels.kpi_label("fill_rate|sector:defense", difference=True) == \
        "Difference in fill rate, defense (percentage points)"
    labels.KPIS["unfilled_t"] = ("demand not filled", "t")
    try:
        assert labels.kpi_label("unfilled_t|network") == "Demand not filled, all users (t)"
    finally:
        del labels.KPIS["unfilled_t"]
    assert labels.raw_ids("Mean unfilled_t, nds_us: fill_rate|sector:defense")


def test_event_markers_are_lettered_and_do_not_overlap(mc_pair):
    """Every major policy event gets a letter explained in the caption's key, minor events
    are explained by a note, and no two letters overlap on the drawn figure."""
    _, ctl = mc_pair
    events = list(ctl.policy_events) + [(300.0, "control", "apr_2025 (licensing)"),
                                        (305.0, "outage", "outage sep_cn (30 d)"),
                                        (310.0, "tariff", "tariff 20% CN->US")]
    res = dataclasses.replace(ctl, policy_events=events)
    fig = plots.fan_chart(res, "fill_rate|sector:automotive")
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = [a.get_bbox_patch().get_window_extent() for a in ax.texts
             if len(a.get_text()) == 1 and a.get_text().isupper()]
    key = plots.event_key(events, plots._start_of(res.meta))
    assert len(boxes) == len(key) >= 4
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "A Export licensing, 4 Apr 2025" in caption
    assert "Truce begins, 10 Nov 2025" in caption
    assert "Outage, Lynas Malaysia" not in caption and "Chinese refiners" in caption
    assert plots.MINOR_EVENT_NOTE in caption
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def _all_tables(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for stem in ("summary", "replications", "paired_differences", "sweep", "sweep_summary",
                 "comparison"):
        for sub in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
            if any((sub / f"{stem}.{e}").exists() for e in tables.FORMATS):
                out[f"{sub.name}/{stem}"] = tables.read_table(sub / stem)
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_of_every_command_share_the_schema(fmt, tmp_path, run_cli):
    """run (with --compare), mc, compare and sweep write their KPI tables in one schema, with
    the documented dtypes after reading back; categorical outcomes are labels; the CSV and the
    Parquet versions of a table are equal."""
    scen = tmp_path / "ctl.toml"
    scen.write_text(CONTROL_TOML)
    common = ["--network", "teaching", "--days", "365", "--no-plots", "--format", fmt]
    mc = ["--reps", "3", "--workers", "1", "--seed", "2"]
    cmds = {"run": ["run", "--scenario", scen, "--compare", "baseline"],
            "mc": ["mc", "--scenario", scen, *mc],
            "compare": ["compare", "--scenarios", "baseline", scen, *mc],
            "sweep": ["sweep", "--scenario", scen, "--param",
                      "nodes.nds_us.initial.ndfeb_magnet=0,40", *mc]}
    seen = {}
    for name, args in cmds.items():
        out = tmp_path / f"{name}-{fmt}"
        proc = run_cli(*args, *common, "--out", out, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert not list(out.rglob(f"*.{'csv' if fmt == 'parquet' else 'parquet'}"))
        for key, df in _all_tables(out).items():
            assert list(df.columns) == list(tables.SCHEMA), key
            assert {c: str(t) for c, t in df.dtypes.items()} == tables.SCHEMA, key
            seen[(name, key)] = df
    assert {k[0] for k in seen} == set(cmds)
    outcome = pd.concat([d[d["kpi"] == "truce_outcome"] for d in seen.values()])
    assert len(outcome) and set(outcome["label"]) <= {"none", "reinstate", "extend", "escalate"}
    assert outcome.loc[outcome["statistic"] == "value", "value"].isna().all()
    # round trip: written in one format, read back, written in the other, read back: equal
    for (name, key), df in seen.items():
        other = "csv" if fmt == "parquet" else "parquet"
        path = tables.write_table(df, tmp_path / "rt" / key.replace("/", "_"), other)
        back = tables.read_table(path.with_suffix(""))
        pd.testing.assert_frame_equal(back, df, check_exact=True)


def test_parquet_without_pyarrow_is_a_clean_error(tmp_path):
    """In a Python where pyarrow cannot be imported (blocked before pandas loads),
    ``--format parquet`` stops every table-writing command at once with a one-line error
    naming the option (exit 2, nothing written); CSV still works there."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    prog = ("import sys; sys.modules['pyarrow'] = None\n"
            "from sim.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    for args in (["run"], ["mc", "--reps", "2"], ["compare", "--scenarios", "a", "b"],
                 ["sweep", "--param", "nodes.nds_us.initial.ndfeb_magnet=0,1"]):
        out = tmp_path / args[0]
        proc = subprocess.run([sys.executable, "-c", prog, *args, "--network", "teaching",
                               "--format", "parquet", "--out", str(out)], cwd=root,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        err = proc.stderr
        assert err.startswith("error: ") and "pyarrow" in err and "format" in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    proc = subprocess.run([sys.executable, "-c", prog, "run", "--network", "teaching", "--days",
                           "30", "--no-plots", "--out", str(tmp_path / "csv")], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "csv" / "summary.csv").exists()


@pytest.mark.parametrize("halfwidth,reached", [("0.5", True), ("0.0000001", False)])
def test_manifest_precision_fields_match_the_console(halfwidth, reached, tmp_path, run_cli):
    """With a precision target the console's reached / NOT reached and the manifest's
    target_reached (true / false, never null) agree, and the manifest holds the half-widths."""
    out = tmp_path / "mc"
    col = "fill_rate|sector:automotive"
    scen = tmp_path / "ctl.toml"
    scen.write_text(CONTROL_TOML)          # fill rates vary: a tiny target cannot be met
    proc = run_cli("mc", "--network", "teaching", "--scenario", scen, "--days", "730",
                   "--workers", "1", "--seed", "3",
                   "--target", f"{col}={halfwidth}", "--max-reps", "4", "--no-plots",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["target_reached"] is reached
    assert ("NOT reached" in proc.stdout) is (not reached)
    assert f"after {man['reps_used']} reps" in proc.stdout
    assert set(man["target_halfwidths"]) == {col}


def test_mc_help_has_plain_percent(run_cli):
    """``mc --help`` prints "95% CIs", not "95%% CIs"."""
    proc = run_cli("mc", "--help")
    assert proc.returncode == 0
    assert "95%%" not in proc.stdout and "95% CI" in proc.stdout.replace("\n", " ")
