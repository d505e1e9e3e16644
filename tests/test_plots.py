"""Every figure type renders to a readable PNG, from small real runs of the teaching network,
including ``python -m sim plot DIR`` end to end for mc and sweep folders."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import sim
from conftest import CONTROL_TOML
from sim import plots
from sim.experiment import monte_carlo, paired_comparison
from sim.network import load_network
from sim.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SWEEP_PARAMS = {"nodes.nds_us.initial.ndfeb_magnet": [0, 40],
                "nodes.magnets_jp.production.ndfeb_magnet.capacity_t_per_year": [700, 1200]}


def assert_png(path) -> None:
    path = Path(path)
    assert path.exists(), path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, path
    assert path.stat().st_size > 5_000, (path, path.stat().st_size)


def control_scenario():
    return sim.Scenario.from_dict({
        "scenario": {"name": "cn-control", "description": "test"},
        "controls": {"apr_2025": {"exporter": "CN", "elements": ["Dy", "Tb"],
                                  "destinations": "all", "start": dt.date(2025, 4, 4),
                                  "regime": "licensing", "review_days": 30,
                                  "approval_probability": 0.5}},
        "truce": {"suspends": ["apr_2025"], "start": dt.date(2025, 11, 10), "duration_days": 365},
    })


@pytest.fixture(scope="module")
def base():
    return monte_carlo("teaching", reps=8, seed=1, workers=1)


@pytest.fixture(scope="module")
def control():
    return monte_carlo("teaching", control_scenario(), reps=8, seed=1, workers=1)


@pytest.fixture(scope="module")
def grid_sweep():
    return sweep("teaching", None, SWEEP_PARAMS, reps=4, workers=1, plots=False)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("plots")


def run_cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, "-m", "sim", *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    return out


# ---------------------------------------------------------------------------------------------
# Monte Carlo figures
# ---------------------------------------------------------------------------------------------

def test_fan_chart_with_policy_events(control, tmp):
    assert control.policy_events, "the control scenario should have dated policy events"
    for name in ("fill_rate|sector:defense", "backorders_t|sector:automotive",
                 "net_inventory_t|sector:defense"):
        p = plots.fan_chart(control, name, tmp / f"fan_{name.split('|')[0]}.png")
        assert_png(p)


def test_fan_chart_returns_figure_with_percent_axis(control):
    fig = plots.fan_chart(control, "fill_rate|sector:defense")
    try:
        ax = fig.axes[0]
        assert "%" in ax.get_ylabel()
        assert ax.get_ylim() == (-2, 102)
        assert ax.get_title()
        assert ax.get_xlabel()
        assert ax.get_legend() is not None
        texts = " ".join(t.get_text() for t in fig.texts)
        assert "cn-control" in texts
        assert "8 replications" in texts
        assert "seed 1" in texts
        # one dashed line per policy event
        assert sum(1 for l in ax.lines if l.get_linestyle() == "--") >= len(control.policy_events)
    finally:
        matplotlib.pyplot.close(fig)
    with pytest.raises(KeyError):
        plots.fan_chart(control, "fill_rate|sector:nowhere")


def test_scenario_distributions(base, control, tmp):
    assert_png(plots.scenario_distributions([base, control], "fill_rate|sector:defense",
                                            tmp / "dist_defense.png"))
    assert_png(plots.scenario_distributions([base, control], "backordered_t|sector:automotive",
                                            tmp / "dist_backordered.png"))
    # one scenario: no paired panel, still a figure
    fig = plots.scenario_distributions([control], "fill_rate|sector:defense")
    assert len(fig.axes) == 1
    matplotlib.pyplot.close(fig)


def test_forest_plot(base, control, tmp):
    diffs = paired_comparison(base, control)
    assert_png(plots.forest_plot(diffs, tmp / "forest.png"))


def test_plot_monte_carlo_after_save(control, tmp):
    """Saving draws nothing; the figures drawn after it are listed in the manifest by
    sim.persist.record_files (as the mc command does)."""
    from sim.persist import record_files
    from sim.style import sibling_files

    out = control.save(tmp / "mc")
    assert not list(out.glob("*.png"))
    with pytest.raises(sim.ModelError, match="draws no figures"):
        control.save(tmp / "mc2", plots=True)
    drawn = [n for p in plots.plot_monte_carlo(control, out) for n in sibling_files(p)]
    record_files(out, drawn, sort=True)
    names = [n for n in json.loads((out / "manifest.json").read_text())["files"]
             if n.endswith(".png")]
    assert {"fan_fill_rate.png", "fan_backorders.png", "kpi_distributions.png"} <= set(names)
    for n in names:
        assert_png(out / n)


def test_plot_comparison_and_replot_compare_folder(base, control, tmp):
    """A compare folder as ``python -m sim compare`` writes it, redrawn by replot."""
    out = tmp / "compare"
    out.mkdir()
    for r in (base, control):
        r.save(out / r.meta["scenario"], plots=False)
    paired_comparison(base, control).to_csv(out / "paired_differences.csv", index=False)
    (out / "manifest.json").write_text(json.dumps(
        {"kind": "compare", "scenarios": ["baseline", "cn-control"], "reps": 8, "seed": 1}))
    paths = plots.replot(out, "compare")
    names = {p.name for p in paths}
    assert {"compare_fan_fill_rate.png", "compare_fan_backorders.png",
            "compare_dist_fill_rate_defense.png", "compare_dist_fill_rate_automotive.png",
            "compare_forest.png"} <= names
    assert out / "cn-control" / "fan_fill_rate.png" in paths
    for p in paths:
        assert_png(p)
    # without a diffs table the paired differences are computed from per_rep
    figs = plots.plot_comparison([base, control], None, None)
    assert len(figs) == 5
    for f in figs:
        matplotlib.pyplot.close(f)


# ---------------------------------------------------------------------------------------------
# Sweep figures
# ---------------------------------------------------------------------------------------------

def test_sweep_heatmap_lines_and_tornado(grid_sweep, tmp):
    x, y = list(SWEEP_PARAMS)
    assert_png(plots.sweep_heatmap(grid_sweep, "fill_rate|sector:defense", x, y, tmp / "heat.png"))
    assert_png(plots.sweep_lines(grid_sweep, "fill_rate|sector:defense", x, tmp / "lines.png"))
    assert_png(plots.sweep_lines(grid_sweep, "fill_rate|sector:automotive", x, tmp / "lines_by.png",
                                 by=y))
    sens = plots.one_at_a_time(grid_sweep, "fill_rate|sector:defense")
    assert_png(plots.tornado(sens, tmp / "tornado.png"))
    # a plain list of (parameter, low_kpi, high_kpi, base_kpi) works too
    assert_png(plots.tornado([("a.b", 0.5, 0.9, 0.7), ("c.d", 0.65, 0.72, 0.7)],
                             tmp / "tornado_list.png", kpi_col="fill_rate|sector:defense"))


def test_one_at_a_time_values(grid_sweep):
    col = "fill_rate|sector:defense"
    x, y = list(SWEEP_PARAMS)
    sens = plots.one_at_a_time(grid_sweep, col)
    assert set(sens["parameter"]) == {x, y}
    assert (np.diff(sens["span"].to_numpy()) <= 0).all(), "sorted by span, widest first"
    t = grid_sweep.table
    # grid: the base holds each parameter at the middle (here: lower) of its values
    row = sens.set_index("parameter").loc[x]
    at = t[t[y] == 700]
    assert row["low_value"] == 0
    assert row["high_value"] == 40
    assert row["low_value_kpi"] == pytest.approx(at.loc[at[x] == 0, col].mean())
    assert row["high_value_kpi"] == pytest.approx(at.loc[at[x] == 40, col].mean())
    assert row["base_kpi"] == pytest.approx(t.loc[(t[x] == 0) & (t[y] == 700), col].mean())
    # an explicit base point
    sens2 = plots.one_at_a_time(grid_sweep, col, base_point={x: 40, y: 1200})
    r2 = sens2.set_index("parameter").loc[y]
    at = t[t[x] == 40]
    assert r2["low_value_kpi"] == pytest.approx(at.loc[at[y] == 700, col].mean())


def test_lhs_sweep_heatmap_and_one_param_lines(tmp):
    lhs = sweep("teaching", control_scenario(), {k: [v[0], v[-1]] for k, v in SWEEP_PARAMS.items()},
                design="lhs", samples=6, reps=2, workers=1, plots=False, horizon_days=730)
    x, y = list(SWEEP_PARAMS)
    assert_png(plots.sweep_heatmap(lhs, "fill_rate|sector:defense", x, y, tmp / "lhs_heat.png"))
    sens = plots.one_at_a_time(lhs, "fill_rate|sector:defense")
    assert set(sens["method"]) == {"lowest vs highest third"}
    assert_png(plots.tornado(sens, tmp / "lhs_tornado.png"))
    one = sweep("teaching", control_scenario(), {"nodes.nds_us.initial.ndfeb_magnet": [0, 20, 40]},
                reps=2, workers=1, plots=False, horizon_days=730)
    paths = plots.plot_sweep(one, tmp / "one")
    assert paths
    assert all("lines" in p.name for p in paths)
    for p in paths:
        assert_png(p)


# ---------------------------------------------------------------------------------------------
# Network map
# ---------------------------------------------------------------------------------------------

def test_network_map(control, tmp):
    from sim.simulation import simulate

    net = load_network("teaching")
    assert_png(plots.network_map(net, tmp / "net.png"))
    run = simulate(net, control_scenario(), seed=1, horizon_days=365)
    flows = plots.lane_flows(run)
    assert set(flows) == {l.id for l in net.lanes}
    assert sum(flows.values()) > 0
    assert_png(plots.network_map(net, tmp / "net_flows.png", flows=flows,
                                 shortage=plots.shortage_by_node(run)))
    assert_png(plots.network_map(net, tmp / "net_run.png", result=run))
    short = plots.shortage_by_node(control)
    assert set(short) == {"auto_us", "defense_us"}
    assert all(0 <= v <= 1 for v in short.values())
    assert_png(plots.network_map(net, tmp / "net_mc.png", result=control))


# ---------------------------------------------------------------------------------------------
# Saved folders: python -m sim plot DIR
# ---------------------------------------------------------------------------------------------

def test_cli_plot_mc_folder(tmp):
    out = tmp / "cli_mc"
    toml = tmp / "cn_control_mc.toml"
    toml.write_text(CONTROL_TOML)
    run_cli("mc", "--network", "teaching", "--scenario", toml, "--reps", 6, "--workers", 1,
            "--out", out, "--days", 365, "--no-plots")   # figures after saving: test above
    assert not list(out.glob("*.png"))
    res = run_cli("plot", out, "--figure-format", "png,pdf")
    written = [Path(line) for line in res.stdout.split() if line.endswith(".png")]
    assert {p.name for p in written} >= {"fan_fill_rate.png", "kpi_distributions.png",
                                         "network_map.png"}
    for p in written:
        assert_png(p)
        assert p.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"


def test_cli_plot_sweep_folder(tmp):
    out = tmp / "cli_sweep"
    toml = tmp / "cn_control_sweep.toml"
    toml.write_text(CONTROL_TOML)
    args = ["--scenario", toml]
    for k, v in SWEEP_PARAMS.items():
        args += ["--param", f"{k}={','.join(map(str, v))}"]
    run_cli("sweep", "--network", "teaching", *args, "--reps", 2, "--workers", 1, "--days", 730,
            "--out", out, "--no-plots")
    assert not list(out.glob("*.png"))
    res = run_cli("plot", out)
    written = [Path(line) for line in res.stdout.split() if line.endswith(".png")]
    assert any(p.name.startswith("sweep_heatmap_") for p in written)
    assert any(p.name.startswith("sweep_tornado_") for p in written)
    for p in written:
        assert_png(p)


def test_replot_run_folder(tmp):
    from sim.cli import main

    toml = tmp / "cn_control.toml"
    toml.write_text(CONTROL_TOML)
    run_dir = tmp / "run"
    assert main(["run", "--network", "teaching", "--scenario", str(toml), "--compare", "baseline",
                 "--days", "730", "--seed", "3", "--out", str(run_dir), "--no-plots"]) == 0
    written = plots.replot(run_dir, "run")
    assert {p.name for p in written} >= {"sectors_over_time.png", "comparison.png",
                                         "network_map.png"}
    for p in written:
        assert_png(p)
    # the redrawn sector series match the run's own (from the weekly series table)
    saved = plots._SavedRun(run_dir)
    assert saved.step_days == 7
    series = pd.read_csv(run_dir / "series.csv")
    dem = series[series["kind"].isin(["manufacturer", "defense_user"])]
    assert saved.sector_series()["defense"]["demand"].sum() == pytest.approx(
        dem.loc[dem["sector"] == "defense", "demand"].sum())
    with pytest.raises(ValueError, match="unknown results kind"):
        plots.replot(run_dir, "nonsense")
