"""Results folders (sim.persist): the manifest is written last, savers draw nothing, figures
drawn afterwards are listed, and each kind of folder reads back as it was saved."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest

import sim
from conftest import CONTROL_TOML
from sim import persist
from sim.experiment import monte_carlo, paired_comparison
from sim.sweep import sweep

DAYS = 240


@pytest.fixture(scope="module")
def control():
    return sim.Scenario.from_dict(tomllib.loads(CONTROL_TOML))


@pytest.fixture(scope="module")
def mc(teaching, control):
    return monte_carlo(teaching, control, reps=4, seed=5, workers=1, horizon_days=DAYS)


def _listed(folder) -> list[str]:
    return json.loads((folder / "manifest.json").read_text())["files"]


def test_run_folder_reads_back_its_tables(teaching, control, tmp_path):
    run = sim.simulate(teaching, control, seed=3, horizon_days=DAYS)
    out = run.save(tmp_path / "run")
    assert not list(out.glob("*.png"))                      # saving draws nothing
    assert sorted(_listed(out)) == sorted(p.name for p in out.iterdir()
                                          if p.name != "manifest.json")
    saved = persist.load_results(out)
    assert isinstance(saved, persist.RunFolder) and saved.manifest["seed"] == 3
    kpis = run.kpis()
    fill = kpis[(kpis["kpi"] == "fill_rate") & (kpis["scope"] == "network")]["value"].iloc[0]
    got = saved.summary[(saved.summary["kpi"] == "fill_rate")
                        & (saved.summary["scope"] == "network")]["value"].iloc[0]
    assert got == fill
    assert set(saved.tables) == {"trade_flows", "lane_flows", "capacity_utilisation"}
    with pytest.raises(sim.ModelError, match="draws no figures"):
        run.save(tmp_path / "other", plots=True)


def test_an_interrupted_save_leaves_no_manifest(teaching, control, tmp_path, monkeypatch):
    """A save that fails half way removes the old manifest first and writes none: every
    reader then refuses the folder as incomplete."""
    run = sim.simulate(teaching, control, seed=3, horizon_days=DAYS)
    out = run.save(tmp_path / "run")
    assert (out / "manifest.json").exists()
    calls = []

    def failing(df, stem, fmt="csv"):
        calls.append(stem)
        if len(calls) == 2:
            raise OSError("disk full")
        return sim.tables.write_table(df, stem, fmt)

    monkeypatch.setattr(persist, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        run.save(out)
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no temporary left
    with pytest.raises(sim.ModelError, match="no manifest.json") as err:
        persist.load_results(out)
    assert str(out) in str(err.value)


def test_figures_drawn_after_saving_are_listed_in_the_manifest(mc, tmp_path):
    out = mc.save(tmp_path / "mc")
    before = json.loads((out / "manifest.json").read_text())
    man = persist.record_files(out, ["z.png", "fan.png", "z.png"], sort=True)
    assert man["files"] == sorted(set(before["files"]) | {"z.png", "fan.png"})
    after = json.loads((out / "manifest.json").read_text())
    assert {k: v for k, v in after.items() if k != "files"} == \
        {k: v for k, v in before.items() if k != "files"}      # nothing else changes
    run_dir = tmp_path / "unsorted"
    run_dir.mkdir()
    persist.finish_save(run_dir, {"kind": "run", "files": ["b.csv", "a.csv"]})
    assert persist.record_files(run_dir, ["c.png"])["files"] == ["b.csv", "a.csv", "c.png"]


def test_monte_carlo_folder_reads_back_equal(mc, tmp_path):
    out = mc.save(tmp_path / "mc")
    back = persist.load_results(out)
    assert type(back) is type(mc)
    pd.testing.assert_frame_equal(back.per_rep, mc.per_rep, check_dtype=False)
    assert set(back.series) == set(mc.series)
    for k, v in mc.series.items():
        assert np.array_equal(back.series[k], v)
    assert back.policy_events == [tuple(e) for e in mc.policy_events]
    parts = persist.read_monte_carlo(out)
    assert set(parts) == {"per_rep", "series", "failures", "meta", "policy_events", "trade"}


def test_sweep_folder_reads_back_equal(teaching, tmp_path):
    params = {"nodes.nds_us.initial.ndfeb_magnet": [0, 40]}
    res = sweep(teaching, None, params, reps=2, seed=3, workers=1, horizon_days=DAYS,
                out_dir=tmp_path / "sw")
    assert not list((tmp_path / "sw").glob("*.png"))
    back = persist.load_results(tmp_path / "sw")
    assert back.points == res.points and back.meta["kind"] == "sweep"
    cols = [c for c in res.table.columns if "|" in c]
    assert np.allclose(back.table[cols].to_numpy(float), res.table[cols].to_numpy(float),
                       equal_nan=True)
    with pytest.raises(sim.ModelError, match="draws no figures"):
        sweep(teaching, None, params, reps=1, workers=1, horizon_days=DAYS, plots=True)


def test_compare_folder_reads_back_and_stays_inside(mc, teaching, tmp_path):
    base = monte_carlo(teaching, None, reps=4, seed=5, workers=1, horizon_days=DAYS)
    out = persist.begin_save(tmp_path / "cmp")
    for name, r in (("a", base), ("b", mc)):
        r.save(out / name)
    diffs = paired_comparison(base, mc)
    sim.tables.write_table(sim.tables.tidy_diffs(diffs), out / "paired_differences")
    persist.finish_save(out, {"kind": "compare", "folders": ["a", "b"], "files": []})
    saved = persist.load_results(out)
    assert isinstance(saved, persist.CompareFolder)
    assert [f.name for f in saved.folders] == ["a", "b"]
    kept = diffs[~diffs["kpi"].isin(list(sim.labels.CATEGORIES))]   # codes have no difference
    got = saved.diffs.set_index(["kpi", "scope"])["difference"]
    want = kept.set_index(["kpi", "scope"])["difference"]
    assert got.sort_index().to_numpy() == pytest.approx(want.sort_index().to_numpy(), nan_ok=True)
    persist.finish_save(out, {"kind": "compare", "folders": ["../elsewhere"]})
    with pytest.raises(sim.ModelError):
        persist.read_compare(out)


@pytest.mark.parametrize("text, message", [
    (None, "no manifest.json"),
    ("{not json", "damaged manifest"),
    ("[1, 2]", "not a JSON object"),
    ('{"kind": "plan"}', "unknown kind 'plan'"),
])
def test_bad_folders_are_one_line_errors(tmp_path, text, message):
    if text is not None:
        (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(sim.ModelError, match=message):
        persist.load_results(tmp_path)


def test_cli_folders_list_every_figure_they_hold(run_cli, tmp_path):
    """The commands draw after saving and list every figure in the manifest (the manifest
    names only files that exist)."""
    scen = tmp_path / "control.toml"
    scen.write_text(CONTROL_TOML)
    common = ("--network", "teaching", "--scenario", scen)
    for cmd, extra in (("run", ("--days", DAYS)),
                       ("mc", ("--days", DAYS, "--reps", 3, "--workers", 1, "--quiet")),
                       ("sweep", ("--days", 730, "--reps", 2, "--workers", 1, "--quiet",
                                  "--param", "nodes.nds_us.initial.ndfeb_magnet=0,40",
                                  "--param", "nodes.magnets_jp.production.ndfeb_magnet."
                                  "capacity_t_per_year=700,1200"))):
        out = tmp_path / cmd
        res = run_cli(cmd, *common, *extra, "--out", out)
        assert res.returncode == 0, res.stderr
        listed = _listed(out)
        pngs = {p.name for p in out.glob("*.png")}
        assert pngs and pngs <= set(listed), (cmd, pngs - set(listed))
        assert all((out / n).exists() for n in listed), cmd
