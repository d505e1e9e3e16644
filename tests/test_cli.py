"""The command line, end to end: ``python -m sim ...`` in a subprocess from the repository
root, writing only under ``tmp_path``; plus the TOML round trip of :func:`sim.save_network`.
"""

from __future__ import annotations

import argparse
import json
import os

import pandas as pd
import pytest

import sim
from sim.cli import build_parser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def teaching_out(tmp_path_factory, run_cli):
    """``run --network teaching --days 365 --out DIR`` (run once for the module)."""
    out = tmp_path_factory.mktemp("cli") / "teaching-run"
    proc = run_cli("run", "--network", "teaching", "--days", "365", "--out", out)
    return proc, out


def test_run_succeeds_and_prints_summary(teaching_out):
    """The run exits 0, prints the per-sector summary and where it wrote, nothing on stderr
    but warnings."""
    proc, out = teaching_out
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "network teaching" in proc.stdout
    assert "sector:defense" in proc.stdout
    assert "sector:automotive" in proc.stdout
    assert str(out) in proc.stdout


def test_run_writes_tidy_summary(teaching_out):
    """summary.csv is tidy: columns kpi, scope, value first, one row per (kpi, scope), with
    e.g. kpi=fill_rate scope=sector:defense in [0, 1]; it matches an in-process run."""
    _, out = teaching_out
    df = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert list(df.columns) == list(sim.tables.SCHEMA)
    assert (df["statistic"] == "value").all()
    assert (df["replication"] == 0).all()
    assert not df.duplicated(["kpi", "scope"]).any()
    row = df[(df["kpi"] == "fill_rate") & (df["scope"] == "sector:defense")]
    assert len(row) == 1
    assert 0.0 <= float(row["value"].item()) <= 1.0
    assert {"network", "sector:automotive", "node:auto_us", "policy"} <= set(df["scope"])
    assert (df["seed"] == 0).all()
    assert (df["scenario"] == "baseline").all()
    run = sim.simulate("teaching", seed=0, horizon_days=365)
    ref = run.kpis()
    merged = df.merge(ref, on=["kpi", "scope"], suffixes=("_cli", "_api"))
    assert len(merged) == len(ref) == len(df)
    num = merged["kpi"] != "truce_outcome"          # a category: its label, not a number
    assert pd.to_numeric(merged.loc[num, "value_cli"]).to_numpy() == pytest.approx(
        merged.loc[num, "value_api"].to_numpy(), rel=1e-12, abs=1e-12)
    outcome = df[df["kpi"] == "truce_outcome"]
    assert list(outcome["label"]) == ["none"] and list(outcome["value"]) == [""]


def test_run_writes_series(teaching_out, tmp_path, run_cli):
    """series.csv has the documented columns and one row per stock and week of the horizon
    (end-of-week levels, weekly sums of flows; the last week partial), loads without a
    DtypeWarning (no mixed columns); ``--series daily`` gives one row per stock and day, and
    its weekly sums and week ends are the weekly table's."""
    import warnings

    _, out = teaching_out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = pd.read_csv(out / "series.csv")
    assert list(s.columns) == ["day", "date", "node", "material", "kind", "sector", "inventory",
                               "on_order", "backorders", "received", "shipped", "produced",
                               "consumed", "demand", "filled"]
    assert s["day"].min() == 6
    assert s["day"].max() == 364
    n_stocks = s.groupby(["node", "material"]).ngroups
    assert len(s) == 53 * n_stocks
    assert s["date"].iloc[0] == "2025-01-07"
    assert s["sector"].notna().all()                 # "none" where a node has no sector
    daily_out = tmp_path / "daily"
    proc = run_cli("run", "--network", "teaching", "--days", "365", "--series", "daily",
                   "--no-plots", "--out", daily_out)
    assert proc.returncode == 0, proc.stderr
    d = pd.read_csv(daily_out / "series.csv")
    assert len(d) == 365 * n_stocks and d["day"].min() == 0
    d["week"] = d["day"] // 7
    key = ["node", "material", "week"]
    sums = d.groupby(key)[["demand", "filled", "shipped"]].sum().reset_index()
    ends = d.groupby(key)[["inventory", "backorders"]].last().reset_index()
    s["week"] = s["day"] // 7
    both = s.merge(sums, on=key, suffixes=("", "_d")).merge(ends, on=key, suffixes=("", "_e"))
    assert len(both) == len(s)
    for c in ("demand", "filled", "shipped"):
        assert both[c].to_numpy() == pytest.approx(both[c + "_d"].to_numpy())
    for c in ("inventory", "backorders"):
        assert both[c].to_numpy() == pytest.approx(both[c + "_e"].to_numpy())


def test_run_writes_manifest(teaching_out):
    """manifest.json records the network (name and SHA-256 of its content), scenario, seed,
    horizon, package versions, the command line and the files written."""
    _, out = teaching_out
    man = json.loads((out / "manifest.json").read_text())
    assert man["network"] == "teaching"
    assert man["network_sha256"] == sim.load_network("teaching").digest()
    assert len(man["network_sha256"]) == 64
    assert man["seed"] == 0
    assert man["replication"] == 0
    assert man["horizon_days"] == 365
    assert man["start"] == "2025-01-01"
    assert man["scenario"] == "baseline"
    assert len(man["scenario_sha256"]) == 64
    for pkg in ("python", "numpy", "simpy", "pandas"):
        assert man["versions"].get(pkg), pkg
    assert "run" in man["command"]
    assert "--network teaching" in man["command"]
    assert {"summary.csv", "series.csv"} <= set(man["files"])
    for name in man["files"]:
        assert (out / name).is_file(), name


def test_run_writes_real_pngs_and_no_temporaries(teaching_out):
    """At least one plot is written; every PNG has the PNG signature and is over 1 kB; no
    temporary files of the atomic writes are left behind."""
    _, out = teaching_out
    pngs = sorted(out.glob("*.png"))
    assert pngs, f"no PNG in {sorted(p.name for p in out.iterdir())}"
    for p in pngs:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC, p.name
        assert len(data) > 1024, p.name
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert not leftovers


def test_run_no_plots_and_hash_seed_independence(tmp_path, run_cli):
    """``--no-plots`` writes no PNG; results do not depend on Python's hash seed (two runs with
    different PYTHONHASHSEED give byte-identical summary and series)."""
    outs = []
    for hs in ("1", "2"):
        out = tmp_path / f"h{hs}"
        env = {**os.environ, "PYTHONHASHSEED": hs}
        proc = run_cli("run", "--network", "teaching", "--days", "200", "--seed", "3",
                       "--no-plots", "--out", out, env=env)
        assert proc.returncode == 0, proc.stderr
        assert not list(out.glob("*.png"))
        outs.append(out)
    for name in ("summary.csv", "series.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_network_show(run_cli):
    """``network show teaching`` lists materials, every node and every lane."""
    proc = run_cli("network", "show", "teaching")
    assert proc.returncode == 0, proc.stderr
    net = sim.load_network("teaching")
    for nid in net.nodes:
        assert nid in proc.stdout
    for lane in net.lanes:
        assert lane.id in proc.stdout
    for mid in net.materials:
        assert mid in proc.stdout


def test_network_validate_good_and_bad(tmp_path, run_cli, mini, write_toml):
    """``network validate`` prints ok for a valid file; for an invalid one it exits 2 with a
    one- or two-line message on stderr naming the file, node and field, and no traceback."""
    good = write_toml(mini, "good.toml")
    proc = run_cli("network", "validate", good)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
    mini["nodes"]["mine"]["production"]["ore"]["capacity_t_per_year"] = -5
    bad = write_toml(mini, "bad.toml")
    proc = run_cli("network", "validate", bad)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, proc.stderr
    assert str(bad) in proc.stderr
    assert "node 'mine'" in proc.stderr
    assert "capacity_t_per_year" in proc.stderr


def test_network_validate_malformed_toml(write_toml, run_cli):
    """A TOML syntax error is reported on one line with the file name, exit 2."""
    bad = write_toml("[network\nname = 'x'\n", "broken.toml")
    proc = run_cli("network", "validate", bad)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2
    assert str(bad) in proc.stderr
    assert "malformed TOML" in proc.stderr


@pytest.mark.parametrize("args", [
    ["run", "--seed", "-1"],
    ["run", "--seed", "abc"],
    ["run", "--days", "0"],
    ["run", "--days", "-5"],
    ["run", "--days", "inf"],
    ["run", "--network", "no_such_network", "--days", "5"],
    ["run", "--network", "teaching", "--days", "5", "--start", "2025-13-01"],
    ["run", "--network", "teaching", "--days", "5", "--scenario", "no-such-scenario"],
    ["run", "--format", "xml"],
    ["network", "show", "no_such_network"],
    ["scenario", "show", "no-such-scenario"],
    ["frobnicate"],
], ids=lambda a: " ".join(a))
def test_bad_arguments_exit_2_without_traceback(args, tmp_path, run_cli):
    """Bad arguments and unknown names exit with status 2 and a short message on stderr,
    never a traceback, and write nothing."""
    out = tmp_path / "out"
    if args[0] == "run":
        args = [*args, "--out", str(out)]
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "error" in proc.stderr
    assert not out.exists()


def test_unknown_network_message_names_it(run_cli, tmp_path):
    """The message for an unknown network names it and lists the shipped networks."""
    proc = run_cli("run", "--network", "no_such_network", "--days", "5", "--out", tmp_path / "o")
    assert "no_such_network" in proc.stderr
    assert "teaching" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2


def _command_paths(parser: argparse.ArgumentParser, prefix=()):
    """Every command path of the parser tree, e.g. ("network", "show")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(sub, (*prefix, name))


COMMANDS = [(), *sorted(set(_command_paths(build_parser())))]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_works_for_every_command(command, run_cli):
    """``--help`` exits 0 and prints a usage line for the top level and every (sub)command."""
    proc = run_cli(*command, "--help", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m sim")
    assert "Traceback" not in proc.stderr


def test_save_network_round_trip(teaching, tmp_path):
    """``save_network`` then ``load_network`` gives the same content (``digest()``) and the
    same simulation results."""
    path = sim.save_network(teaching, tmp_path / "copy.toml")
    assert path.exists()
    assert not list(tmp_path.glob("*.tmp"))
    again = sim.load_network(path)
    assert again.digest() == teaching.digest()
    assert again.file == str(path)
    a = sim.simulate(teaching, seed=2, horizon_days=300)
    b = sim.simulate(again, seed=2, horizon_days=300)
    assert a.kpi_rows() == b.kpi_rows()


def test_save_network_round_trip_rich_schema(tmp_path, mini):
    """The round trip keeps capacity schedules (TOML dates), qualification days, lane
    capacity, renewal and periodic demand, (r, Q) and periodic-review policies, lost sales and
    order splitting."""
    mini["nodes"]["proc"]["production"]["oxide"]["capacity_schedule"] = [
        {"from": "2026-01-01", "t_per_year": 150}, {"from": "2027-06-01", "t_per_year": 80}]
    mini["nodes"]["proc"]["stock"]["ore"]["policy"] = {"type": "rQ", "r": 5, "Q": 10,
                                                       "review_days": 7}
    mini["nodes"]["buyer"].update(unmet="lost", order_split="single")
    mini["nodes"]["buyer"]["demand"]["oxide"] = {
        "process": "renewal", "interarrival": {"dist": "gamma", "mean": 3, "sd": 1},
        "order_size": {"dist": "triangular", "min": 0.5, "mode": 1, "max": 2}}
    mini["nodes"]["gov"] = {"kind": "defense_user", "country": "US", "sector": "defense",
                            "stock": {"oxide": {"initial": 3, "policy": {"type": "base_stock",
                                                                         "S": 3}}},
                            "demand": {"oxide": {"process": "periodic", "rate_t_per_year": 12,
                                                 "period_days": 30, "cv": 0.3}}}
    mini["lanes"].append({"from": "proc", "to": "gov", "material": "oxide",
                          "lead_time": {"dist": "lognormal", "mean": 9, "sd": 2},
                          "capacity_t_per_year": 40, "qualification_days": 30})
    net = sim.Network.from_dict(mini)
    again = sim.load_network(sim.save_network(net, tmp_path / "rich.toml"))
    assert again.digest() == net.digest()
    assert again.to_dict() == net.to_dict()


def test_mc_keeps_weekly_bands_of_the_scopes_asked(run_cli, tmp_path):
    """``mc --scope`` keeps the weekly series of any demand scope (saved and read back), and
    a scope without demand is a one-line error naming it."""
    from sim.persist import load_results

    out = tmp_path / "mc"
    done = run_cli("mc", "--network", "teaching", "--reps", "3", "--days", "90", "--workers", "1",
                   "--scope", "node:auto_us", "--scope", "country:US", "--no-plots",
                   "--out", out)
    assert done.returncode == 0, done.stderr
    res = load_results(out)
    for scope in ("node:auto_us", "country:US"):
        bands = res.bands(f"fill_rate|{scope}")
        values = bands[["q05", "q50", "q95", "mean"]].to_numpy()
        assert len(bands) >= 12 and ((values >= 0) & (values <= 1)).all()
        assert (bands["q05"] <= bands["q95"]).all()
    bad = run_cli("mc", "--network", "teaching", "--reps", "2", "--days", "30", "--workers", "1",
                  "--scope", "node:nowhere", "--no-plots", "--out", tmp_path / "bad")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: scopes: 'node:nowhere'")
    assert not (tmp_path / "bad" / "manifest.json").exists()
