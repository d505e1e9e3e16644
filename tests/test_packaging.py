"""Shipped data as a package: the networks and scenarios of the repository's ``networks/``
folder install as the data package ``sim._networks`` and are found with importlib.resources;
a listing that finds none is an error (exit status 2), never an empty success; built-in
scenarios may sit in a subfolder (``layers/<name>``).

The install itself (a wheel in a fresh virtual environment outside the tree, running
``python -m sim run`` and ``scenario list`` from another directory) is a step of ``.ci/run``;
here ``setup.py build_py`` lays the package out as a wheel would, without an index or a
compiler.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sim
import sim.network
import sim.scenario
from sim.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_checkout_reads_the_top_level_networks_folder():
    """In a source checkout the shipped data are the repository's ``networks/`` folder, and
    every TOML file there is listed."""
    assert sim.network.shipped_folder() == REPO_ROOT / "networks"
    on_disk = sorted(p.stem for p in (REPO_ROOT / "networks").glob("*.toml"))
    assert sim.list_networks() == on_disk
    scenarios = sorted(p.stem for p in (REPO_ROOT / "networks" / "scenarios").glob("*.toml"))
    assert sorted(sim.list_scenarios()) == scenarios


def test_no_shipped_networks_is_an_error(tmp_path, monkeypatch, capsys):
    """With no network files (an install without its data), listing raises a ModelError that
    names the folder, and ``network list`` exits 2 with that one-line message."""
    monkeypatch.setattr(sim.network, "shipped_folder", lambda *parts: tmp_path.joinpath(*parts))
    with pytest.raises(sim.ModelError, match="no shipped networks found") as info:
        sim.list_networks()
    assert str(tmp_path) in str(info.value)
    assert main(["network", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no shipped networks found" in err
    assert len(err.strip().splitlines()) == 1


def test_no_shipped_scenarios_is_an_error(tmp_path, monkeypatch, capsys):
    """The same for scenarios: an empty (or missing) scenarios folder is an error, exit 2."""
    monkeypatch.setattr(sim.scenario, "BUILTIN_DIR", tmp_path / "scenarios")
    with pytest.raises(sim.ModelError, match="no shipped scenarios found"):
        sim.list_scenarios()
    (tmp_path / "scenarios").mkdir()
    assert main(["scenario", "list"]) == 2
    assert "no shipped scenarios found" in capsys.readouterr().err
    with pytest.raises(sim.ScenarioError, match="unknown scenario 'truce-holds'.*none"):
        sim.load_scenario("truce-holds")


def test_scenarios_in_a_subfolder(tmp_path, monkeypatch):
    """A built-in scenario in a subfolder is named with it (``layers/<name>``): listed with
    ``list_scenarios("layers")``, resolved and loaded by that name; the top-level listing
    keeps to the top folder; an existing file path still comes first."""
    folder = tmp_path / "scenarios"
    (folder / "layers").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "networks" / "scenarios" / "baseline.toml", folder / "top.toml")
    shutil.copy(REPO_ROOT / "networks" / "scenarios" / "controls-apr-2025.toml",
                folder / "layers" / "relief.toml")
    relief = sim.load_scenario("controls-apr-2025").description
    monkeypatch.setattr(sim.scenario, "BUILTIN_DIR", folder)
    assert list(sim.list_scenarios()) == ["top"]
    layers = sim.list_scenarios("layers")
    assert list(layers) == ["layers/relief"]
    assert layers["layers/relief"] == relief
    assert sim.scenario.scenario_path("layers/relief") == folder / "layers" / "relief.toml"
    assert sim.load_scenario("layers/relief").description == layers["layers/relief"]
    with pytest.raises(sim.ScenarioError, match="file not found: layers/missing"):
        sim.load_scenario("layers/missing")
    with pytest.raises(sim.ScenarioError, match="file not found"):
        sim.load_scenario("../scenarios/top")
    with pytest.raises(sim.ModelError, match="no shipped scenarios found"):
        sim.list_scenarios("nothing-here")
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "layers" / "relief.toml"
    local.parent.mkdir()
    shutil.copy(REPO_ROOT / "networks" / "scenarios" / "baseline.toml", local)
    assert sim.scenario.scenario_path("layers/relief.toml") == Path("layers/relief.toml")


def test_built_package_carries_its_data(tmp_path):
    """``setup.py build_py`` (what a wheel holds, without the compiled engine) puts the
    networks and scenarios under ``sim/_networks`` and installs no top-level ``networks``
    package; imported from there in another directory, the package lists and loads them
    through importlib.resources, not from this checkout."""
    pytest.importorskip("setuptools")     # not in a bare Python 3.12 venv (CI builds a wheel)
    lib = tmp_path / "lib"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RARE_EARTH_SIM_PURE_BUILD"] = "1"
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    assert not (lib / "networks").exists()
    data = lib / "sim" / "_networks"
    shipped = sorted(p.relative_to(REPO_ROOT / "networks").as_posix()
                     for p in (REPO_ROOT / "networks").rglob("*")
                     if p.suffix in (".toml", ".md"))
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*")
                  if p.suffix in (".toml", ".md")) == shipped
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import sim, sim.network as n; "
            "print(n.shipped_folder()); print(sim.list_networks()); "
            "print(sorted(sim.list_scenarios())); "
            "print(sim.scenario.scenario_path('truce-holds'))")
    env["PYTHONPATH"] = str(lib)
    env["RARE_EARTH_SIM_ENGINE"] = "python"
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    folder, networks, scenarios, scenario_file = proc.stdout.strip().splitlines()
    assert Path(folder) == data
    assert ast.literal_eval(networks) == sim.list_networks()
    assert ast.literal_eval(scenarios) == sorted(sim.list_scenarios())
    assert Path(scenario_file).resolve().is_relative_to(data.resolve())
