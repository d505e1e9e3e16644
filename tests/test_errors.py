"""Bad input as a hostile user would give it: every class of the problems found by mutating
files, CLI arguments, API calls and results folders gets a test here.

The CLI runs in-process through :func:`sim.cli.main` (any exception other than a handled
``ModelError`` fails the test with its traceback); stderr must be one ``error:`` line and the
status 2. Output is written only under ``tmp_path``, which each test lists before and after.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

import sim
from sim import cli
from sim.errors import ModelError, RunFailedError, ScenarioError
from sim.paths import check_out_dir, child, safe_name

DAYS = "30"


def cli_error(capsys, *argv) -> str:
    """Run ``python -m sim ARGV`` in-process; assert status 2 and one ``error:`` line on
    stderr; return that line."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def cli_ok(capsys, *argv) -> str:
    """Run ``python -m sim ARGV`` in-process; assert status 0; return stdout."""
    code = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return cap.out


def argparse_error(capsys, *argv) -> str:
    """An argument argparse rejects: SystemExit(2) and a usage message naming it."""
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def tree(root: Path) -> set[Path]:
    """Every file and folder under *root*."""
    return set(root.rglob("*"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def scenario_file(folder: Path, name: str, stem: str = "s") -> Path:
    return write(folder / f"{stem}.toml", f'[scenario]\nname = {json.dumps(name)}\n'
                                          'start = 2025-01-01\n')


# ---------------------------------------------------------------------------------------------
# Security: names from files never become paths
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, slug", [
    ("../../etc/passwd", "etc-passwd"), ("/abs/path", "abs-path"), ("..", "unnamed"),
    (".", "unnamed"), ("a/b\\c", "a-b-c"), ("truce-holds", "truce-holds"),
    ("résumé v1.2", "resume-v1-2"), ("", "unnamed"), ("x" * 500, "x" * 80),
])
def test_safe_name(name, slug):
    """A slug has only letters, digits, '_' and '-': never a separator, '.', '..' or empty."""
    assert safe_name(name) == slug


def test_child_dedupes_and_stays_inside(tmp_path):
    """Two names that slug alike get two folders; every child lies inside its parent."""
    taken: set[str] = set()
    a, b = child(tmp_path, "a/b", taken), child(tmp_path, "a b", taken)
    assert a != b and a.parent == b.parent == tmp_path
    with pytest.raises(ModelError, match="outside the output folder"):
        sim.paths.inside(tmp_path, tmp_path / ".." / "x")


@pytest.mark.parametrize("evil", ["../escaped", "ABS", "sub/dir/../../../escaped2", ".."])
def test_scenario_names_stay_inside_the_chosen_folder(capsys, tmp_path, monkeypatch, evil):
    """A scenario named with '../' segments, an absolute path or separators writes nothing
    outside the folder chosen: the default folder of run and mc (under ./results), the
    sub-folder of run --compare and the per-scenario folders of compare."""
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside"      # the absolute name points here
    name = str(outside / "x") if evil == "ABS" else evil
    sc = scenario_file(tmp_path, name)
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    cli_ok(capsys, "run", "--network", "teaching", "--scenario", sc, "--days", DAYS,
           "--no-plots")
    cli_ok(capsys, "run", "--network", "teaching", "--compare", sc, "--days", DAYS,
           "--no-plots", "--out", work / "cmp")
    cli_ok(capsys, "mc", "--network", "teaching", "--scenario", sc, "--reps", "2", "--workers",
           "1", "--days", DAYS, "--no-plots", "--quiet")
    cli_ok(capsys, "compare", "--network", "teaching", "--scenarios", "baseline", sc, sc,
           "--reps", "2", "--workers", "1", "--days", DAYS, "--no-plots", "--quiet",
           "--out", work / "pair")
    new = tree(tmp_path) - before
    assert new and all(work in p.parents for p in new), sorted(map(str, new - set(work.rglob("*"))))
    assert not outside.exists()
    # every folder written has a safe name, and compare kept the two copies apart
    assert all(p.name == safe_name(p.name) or p.suffix for p in new)
    man = json.loads((work / "pair" / "manifest.json").read_text())
    assert len(set(man["folders"])) == 3
    assert all((work / "pair" / f / "manifest.json").exists() for f in man["folders"])


def test_damaged_compare_manifest_cannot_point_outside(capsys, tmp_path):
    """``plot`` of a compare folder whose manifest names '../' sub-folders refuses them."""
    (tmp_path / "c").mkdir()
    write(tmp_path / "c" / "manifest.json", json.dumps({"kind": "compare",
                                                         "folders": ["../../victim"]}))
    line = cli_error(capsys, "plot", tmp_path / "c")
    assert "outside the output folder" in line


# ---------------------------------------------------------------------------------------------
# Tracebacks instead of errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["network", "scenario"])
@pytest.mark.parametrize("content", ["utf16", "binary", "deep", "folder"])
def test_unreadable_files_are_clean_errors(capsys, tmp_path, kind, content):
    """UTF-16 text, binary bytes, arrays nested thousands deep and a folder given as a file
    are one line naming the file."""
    path = tmp_path / "bad.toml"
    if content == "utf16":
        path.write_bytes('[scenario]\nname = "x"\n'.encode("utf-16"))
    elif content == "binary":
        path.write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)))
    elif content == "deep":
        path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    else:
        path.mkdir()
    args = ("network", "validate", path) if kind == "network" else \
        ("scenario", "validate", path, "--network", "teaching")
    line = cli_error(capsys, *args)
    assert str(path) in line
    expected = {"utf16": "not UTF-8", "binary": "(not UTF-8|malformed TOML)",
                "deep": "nested too deeply", "folder": "is a folder"}[content]
    assert re.search(expected, line), line


def test_absurd_horizons_are_clean_errors(capsys, tmp_path):
    """A horizon beyond 36,525 days (100 years), from --days, the API or a scenario's end date,
    is refused before any memory is taken, naming the limit."""
    assert "at most 36525" in argparse_error(capsys, "run", "--network", "teaching",
                                             "--days", "1e12")
    assert "at most 36525" in argparse_error(capsys, "mc", "--days", "1e12")
    with pytest.raises(ModelError, match=r"horizon_days: must be at most 36,525 days"):
        sim.simulate("teaching", horizon_days=1e12)
    with pytest.raises(ModelError, match=r"horizon_days: must be at most 36,525 days"):
        sim.monte_carlo("teaching", reps=2, horizon_days=1e9, workers=1)
    far = write(tmp_path / "far.toml", '[scenario]\nname = "far"\nstart = 2025-01-01\n'
                                       'end = 9999-01-01\n')
    with pytest.raises(ModelError, match=r"horizon_days: must be at most 36,525 days"):
        sim.simulate("teaching", far)
    sim.simulate("teaching", horizon_days=36_525 / 1000)     # well under the limit: runs


@pytest.mark.parametrize("command", ["run", "mc", "compare", "sweep"])
@pytest.mark.parametrize("where", ["file", "under_file", "read_only"])
def test_bad_out_folder_fails_before_any_simulation(capsys, tmp_path, monkeypatch, command,
                                                    where):
    """--out that is a file, lies under a file, or cannot be written is one error line, given
    before any replication runs (the simulation entry points are replaced by a trap)."""
    blocker = write(tmp_path / "afile", "x")
    out = {"file": blocker, "under_file": blocker / "sub" / "dir",
           "read_only": tmp_path / "ro" / "new"}[where]
    if where == "read_only":
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
        if os.geteuid() == 0:           # root may write anywhere: the check sees what others would
            real_access = os.access
            monkeypatch.setattr(sim.paths.os, "access", lambda p, mode: real_access(p, mode) and
                                Path(p) != tmp_path / "ro")

    def trap(*a, **k):
        raise AssertionError("a simulation ran before the output folder was checked")

    monkeypatch.setattr(sim.simulation, "simulate", trap)
    monkeypatch.setattr(sim.experiment, "run_replications", trap)
    monkeypatch.setattr(sim.experiment, "run_chunk", trap)
    monkeypatch.setattr(sys.modules["sim.sweep"], "run_chunk", trap)
    args = {"run": ["run", "--network", "teaching"],
            "mc": ["mc", "--network", "teaching", "--workers", "1"],
            "compare": ["compare", "--network", "teaching", "--scenarios", "baseline",
                        "baseline", "--workers", "1"],
            "sweep": ["sweep", "--network", "teaching", "--workers", "1", "--param",
                      "nodes.nds_us.initial.ndfeb_magnet=0,1"]}[command]
    try:
        line = cli_error(capsys, *args, "--days", DAYS, "--out", out)
        with pytest.raises(ModelError):
            check_out_dir(out)
    finally:
        if where == "read_only":
            (tmp_path / "ro").chmod(0o700)
    assert {"file": "not a folder", "under_file": "it is a file",
            "read_only": "permission denied"}[where] in line


def test_bad_max_reps_and_samples_are_clean_errors(capsys):
    """--max-reps and --samples of 0 or below are refused by the parser, naming the option."""
    for bad in ("0", "-5", "x"):
        err = argparse_error(capsys, "mc", "--target", "fill_rate|network=0.1", "--max-reps", bad)
        assert "--max-reps" in err
    assert "--samples" in argparse_error(capsys, "sweep", "--param", "x=1", "--samples", "0")
    assert "--max-failures" in argparse_error(capsys, "mc", "--max-failures", "1.5")


def test_bad_or_unreachable_scheduler_is_a_clean_error(capsys, tmp_path, monkeypatch):
    """A malformed --scheduler address, an empty one and one where nothing answers (after
    SCHEDULER_TIMEOUT_S) are one line naming the scheduler."""
    pytest.importorskip("distributed")
    monkeypatch.setattr(sim.experiment, "SCHEDULER_TIMEOUT_S", 1.0)
    for address in ("bogus:::", "", "tcp://127.0.0.1:1"):
        line = cli_error(capsys, "mc", "--network", "teaching", "--reps", "2", "--days", DAYS,
                         "--scheduler", address, "--out", tmp_path / "o")
        assert line.startswith("error: scheduler: ")
    assert not (tmp_path / "o").exists()


def _small_sweep(net, out, **kw):
    kw.setdefault("workers", 1)
    return sim.sweep(net, None, {"nodes.nds_us.initial.ndfeb_magnet": [0, 40]}, reps=4, seed=3,
                     out_dir=out, horizon_days=60, plots=False, **kw)


def test_damaged_sweep_files_on_resume_are_clean_errors(teaching, tmp_path):
    """A chunk file or sweep spec damaged between runs is an error naming the file (and what
    to do), not a JSON traceback; a chunk file of another shape too."""
    out = tmp_path / "sw"
    _small_sweep(teaching, out, chunk_size=2)
    chunk = sorted((out / "chunks").glob("*.json"))[0]
    (out / "manifest.json").unlink()
    chunk.write_bytes(b"\x00\xff garbage")
    with pytest.raises(ModelError, match=rf"{chunk.name}: damaged chunk file"):
        _small_sweep(teaching, out)
    chunk.write_text(json.dumps({"reps": [0, 1], "values": [[1.0]], "failures": []}))
    with pytest.raises(ModelError, match=rf"{chunk.name}: damaged chunk file"):
        _small_sweep(teaching, out)
    chunk.unlink()
    (out / "sweep_spec.json").write_text("{not json")
    with pytest.raises(ModelError, match="sweep_spec.json: damaged sweep spec"):
        _small_sweep(teaching, out)


@pytest.mark.parametrize("damage", ["garbage", "not_object", "kind", "series"])
def test_damaged_manifest_for_plot_is_a_clean_error(capsys, tmp_path, damage):
    """``plot`` of a folder whose manifest (or a file it lists) was damaged names the folder."""
    out = tmp_path / "mc"
    cli_ok(capsys, "mc", "--network", "teaching", "--reps", "3", "--workers", "1", "--days", DAYS,
           "--no-plots", "--quiet", "--out", out)
    man = out / "manifest.json"
    if damage == "garbage":
        man.write_bytes(b"\xff\xfe{{{")
    elif damage == "not_object":
        man.write_text("[1, 2]")
    elif damage == "kind":
        man.write_text(json.dumps({"kind": "../../x"}))
    else:
        (out / "series.npz").write_bytes(b"PK\x03\x04 truncated")
    line = cli_error(capsys, "plot", out)
    assert str(out) in line and "damaged" in line


@pytest.mark.parametrize("call, field", [
    (lambda: sim.simulate(5), "network"),
    (lambda: sim.simulate("teaching", None, seed="1"), "seed"),
    (lambda: sim.simulate("teaching", None, seed=1.5), "seed"),
    (lambda: sim.simulate("teaching", None, horizon_days="30"), "horizon_days"),
    (lambda: sim.simulate("teaching", 42), "scenario"),
    (lambda: sim.simulate("teaching", None, start=[2025]), "start"),
    (lambda: sim.load_network(None), "network"),
    (lambda: sim.load_scenario(b"x"), "scenario"),
    (lambda: sim.monte_carlo("teaching", reps="3"), "reps"),
    (lambda: sim.monte_carlo("teaching", reps=2, workers="2"), "workers"),
    (lambda: sim.monte_carlo("teaching", reps=2, track=5), "track"),
    (lambda: sim.monte_carlo("teaching", reps=2, track=[("a",)]), "track"),
    (lambda: sim.monte_carlo("teaching", reps=2, target=["fill_rate"]), "target"),
    (lambda: sim.monte_carlo("teaching", reps=2, executor=object()), "executor"),
    (lambda: sim.monte_carlo("teaching", reps=2, max_failure_share="all"), "max_failure_share"),
    (lambda: sim.sweep("teaching", None, [1, 2]), "params"),
    (lambda: sim.sweep("teaching", None, {"truce.x": [1]}, out_dir=3), "out_dir"),
    (lambda: sim.sweep("teaching", None, {"truce.x": [1]}, workers=0), "workers"),
])
def test_wrong_typed_api_arguments_are_model_errors(call, field):
    """Arguments of the wrong type are a ModelError naming the argument, as the README
    promises for every input error, not a TypeError from deep inside."""
    with pytest.raises(ModelError, match=rf"\b{field}\b"):
        call()


def test_saving_into_a_file_is_a_model_error(tmp_path):
    """Run.save and MonteCarloResults.save into a path that is a file: a ModelError."""
    blocker = write(tmp_path / "f", "x")
    run = sim.simulate("teaching", horizon_days=20)
    with pytest.raises(ModelError, match="not a folder"):
        run.save(blocker, plots=False)
    res = sim.monte_carlo("teaching", reps=2, workers=1, horizon_days=20)
    with pytest.raises(ModelError, match="it is a file"):
        res.save(blocker / "sub", plots=False)


# ---------------------------------------------------------------------------------------------
# Silent acceptance
# ---------------------------------------------------------------------------------------------

BAD_SCENARIOS = {
    "tariff_ends_before_start": ('[[tariffs]]\norigin = "CN"\nrate = 0.1\nstart = 2026-01-01\n'
                                 'end = 2025-06-01\n', r"tariffs\[0\]: end: end \(2025-06-01\) "
                                 r"must be after start"),
    "surge_unknown_sector": ('[[demand_surges]]\nsector = "toys"\nfactor = 2\n'
                             'start = 2026-01-01\nend = 2026-06-01\n',
                             r"demand_surges\[0\]: sector: sector 'toys' is not a sector"),
    "surge_sector_list": ('[[demand_surges]]\nsector = ["defense"]\nfactor = 2\n'
                          'start = 2026-01-01\nend = 2026-06-01\n',
                          r"demand_surges\[0\]: sector: must be a sector name"),
    "outage_without_production": ('[[outages]]\nnode = "defense_us"\nstart = 2025-02-01\n'
                                  'duration_days = 10\n',
                                  r"outages\[0\]: node: node 'defense_us' has no production"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_scenario_validate_checks_what_run_checks(capsys, tmp_path, case):
    """Each of these was accepted (by validate, or by both): now `scenario validate` and `run`
    refuse it with the same line, since they run one validation."""
    body, pattern = BAD_SCENARIOS[case]
    path = write(tmp_path / f"{case}.toml", '[scenario]\nname = "bad"\n' + body)
    line_v = cli_error(capsys, "scenario", "validate", path, "--network", "teaching")
    line_r = cli_error(capsys, "run", "--network", "teaching", "--scenario", path, "--days", DAYS,
                       "--no-plots", "--out", tmp_path / "o")
    assert line_v == line_r
    assert re.search(pattern, line_v), line_v
    assert str(path) in line_v
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kwargs, field", [
    (dict(chunk_size=-1), "chunk_size"), (dict(chunk_size=0), "chunk_size"),
    (dict(target={"fill_rate|network": -0.01}), "target"),
    (dict(target={"fill_rate|network": 0.01}, max_reps=0), "max_reps"),
    (dict(target={"fill_rate|network": 0.01}, check_every=0), "check_every"),
    (dict(seed=-1), "seed"), (dict(max_failure_share=1.5), "max_failure_share"),
])
def test_monte_carlo_options_out_of_range(kwargs, field):
    """Options that used to return no replications without an error name themselves."""
    with pytest.raises(ModelError, match=rf"^{field}"):
        sim.monte_carlo("teaching", reps=2, workers=1, horizon_days=20, **kwargs)


@pytest.mark.parametrize("kwargs, field", [
    (dict(seed=-1), "seed"), (dict(chunk_size=-1), "chunk_size"), (dict(reps=0), "reps"),
    (dict(start="someday"), "start"),
])
def test_sweep_options_out_of_range(teaching, kwargs, field):
    """sweep(seed=-1) and friends fail at once (they used to log per-replication failures)."""
    args = dict(reps=2, workers=1, horizon_days=20)
    args.update(kwargs)
    with pytest.raises(ModelError, match=rf"^{field}"):
        sim.sweep(teaching, None, {"nodes.nds_us.initial.ndfeb_magnet": [0]}, **args)


# ---------------------------------------------------------------------------------------------
# A run that fails says so
# ---------------------------------------------------------------------------------------------

def _failing_simulate(monkeypatch, every: int):
    """Make replication i fail when i % every == 0 (in-process, so --workers 1)."""
    real = sim.simulation.simulate

    def flaky(*args, replication=0, **kw):
        if replication % every == 0:
            raise RuntimeError(f"injected failure in replication {replication}")
        return real(*args, replication=replication, **kw)

    monkeypatch.setattr(sim.simulation, "simulate", flaky)


def test_mc_and_sweep_whose_replications_all_fail_exit_2_without_manifest(capsys, tmp_path,
                                                                          monkeypatch):
    """Every replication failing: mc and sweep exit 2 quoting the first failure, and leave no
    manifest (mc no folder at all)."""
    _failing_simulate(monkeypatch, 1)
    line = cli_error(capsys, "mc", "--network", "teaching", "--reps", "4", "--workers", "1",
                     "--days", DAYS, "--out", tmp_path / "mc")
    assert "4 of 4 replications failed" in line
    assert "replication 0: RuntimeError: injected failure in replication 0" in line
    assert not (tmp_path / "mc").exists()
    line = cli_error(capsys, "sweep", "--network", "teaching", "--reps", "2", "--workers", "1",
                     "--param", "nodes.nds_us.initial.ndfeb_magnet=0,5", "--days", DAYS,
                     "--out", tmp_path / "sw")
    assert "4 of 4 replications failed" in line and "injected failure" in line
    assert not (tmp_path / "sw" / "manifest.json").exists()
    with pytest.raises(RunFailedError):
        sim.monte_carlo("teaching", reps=3, workers=1, horizon_days=20,
                        target={"fill_rate|network": 0.01}, check_every=3, max_reps=6)


def test_partial_failures_are_reported_and_a_share_can_fail_the_run(capsys, tmp_path,
                                                                    monkeypatch):
    """A quarter of the replications failing: the run completes, and the printed summary and
    the manifest count the failures; with --max-failures 0.2 the same run fails (exit 2, no
    manifest)."""
    _failing_simulate(monkeypatch, 4)
    out = cli_ok(capsys, "mc", "--network", "teaching", "--reps", "8", "--workers", "1",
                 "--days", DAYS, "--no-plots", "--out", tmp_path / "mc")
    assert "6 replications (2 failed)" in out
    man = json.loads((tmp_path / "mc" / "manifest.json").read_text())
    assert man["failures"] == 2 and man["max_failure_share"] == 0.5
    line = cli_error(capsys, "mc", "--network", "teaching", "--reps", "8", "--workers", "1",
                     "--days", DAYS, "--no-plots", "--max-failures", "0.2",
                     "--out", tmp_path / "mc2")
    assert "2 of 8 replications failed (more than 20% of the replications" in line
    assert not (tmp_path / "mc2" / "manifest.json").exists()
    out = cli_ok(capsys, "sweep", "--network", "teaching", "--reps", "4", "--workers", "1",
                 "--param", "nodes.nds_us.initial.ndfeb_magnet=0,5", "--days", DAYS,
                 "--no-plots", "--out", tmp_path / "sw")
    assert "2 failed" in out
    assert json.loads((tmp_path / "sw" / "manifest.json").read_text())["failures"] == 2


# ---------------------------------------------------------------------------------------------
# Vague messages
# ---------------------------------------------------------------------------------------------

def test_messages_name_the_right_argument(capsys):
    """'' as a network names the argument; a bad shortage_after names shortage_after, not
    start; check_every=0 names check_every, not an unknown KPI column."""
    assert cli_error(capsys, "network", "validate", "").startswith("error: network: ")
    assert cli_error(capsys, "scenario", "validate", "").startswith("error: scenario: ")
    for command in ("run", "mc", "sweep"):        # '' is not the current folder
        assert "--out" in argparse_error(capsys, command, "--out", "")
    with pytest.raises(ModelError, match=r"^shortage_after: must be a date"):
        sim.simulate("teaching", horizon_days=20, shortage_after="soon")
    with pytest.raises(ModelError, match=r"^check_every: must be a positive integer"):
        sim.monte_carlo("teaching", reps=2, workers=1, horizon_days=20, check_every=0,
                        target={"fill_rate|network": 0.1})


# ---------------------------------------------------------------------------------------------
# A sweep resumes with any number of workers
# ---------------------------------------------------------------------------------------------

def test_sweep_resumes_with_another_chunk_size(teaching, tmp_path):
    """Chunking is not part of a sweep's identity: a sweep interrupted after chunks of 3 reps
    resumes with chunks of 1 (another worker count's default) to the same tables; a folder
    whose spec still hashes the chunk size (older versions) resumes too."""
    ref = _small_sweep(teaching, None, chunk_size=4)
    out = tmp_path / "sw"
    _small_sweep(teaching, out, chunk_size=3)
    chunks = sorted((out / "chunks").glob("*.json"))
    assert len(chunks) == 4                                      # 2 points x (0-2, 3)
    chunks[0].unlink()
    (out / "manifest.json").unlink()
    resumed = _small_sweep(teaching, out, chunk_size=1)
    assert_frame_equal(resumed.table, ref.table, check_exact=True)
    assert_frame_equal(resumed.summary, ref.summary, check_exact=True)
    # an older folder: the spec hashed with the chunk size in it
    spec_path = out / "sweep_spec.json"
    stored = json.loads(spec_path.read_text())
    stored["spec"]["chunk_size"] = 3
    stored["hash"] = sim.experiment.digest_of(stored["spec"])
    spec_path.write_text(json.dumps(stored))
    (out / "manifest.json").unlink()
    again = _small_sweep(teaching, out, workers=2)
    assert_frame_equal(again.table, ref.table, check_exact=True)
    with pytest.raises(ModelError, match="different sweep"):
        sim.sweep(teaching, None, {"nodes.nds_us.initial.ndfeb_magnet": [0, 40]}, reps=4,
                  seed=4, out_dir=out, workers=1, horizon_days=60, plots=False)


def test_scenario_error_type_is_kept(tmp_path):
    """Errors from the shared validation stay ScenarioErrors (callers catch them by type)."""
    path = write(tmp_path / "s.toml", '[scenario]\nname = "x"\n' + BAD_SCENARIOS[
        "outage_without_production"][0])
    with pytest.raises(ScenarioError):
        sim.load_scenario(path).check_network(sim.load_network("teaching"))


def test_network_without_demand_runs_and_says_so(capsys, tmp_path, teaching_dict, write_toml):
    """A valid network with no customer demand (found by the fuzz test) runs, and its summary
    says there is nothing to fill instead of raising KeyError."""
    d = teaching_dict
    d["nodes"] = {k: v for k, v in d["nodes"].items() if "demand" not in v}
    d["lanes"] = []
    path = write_toml(d, "nodemand.toml")
    out = cli_ok(capsys, "run", "--network", path, "--days", DAYS, "--no-plots",
                 "--out", tmp_path / "o")
    assert "no customer demand" in out
    assert (tmp_path / "o" / "manifest.json").exists()


@pytest.mark.parametrize("name", ['5', '["a"]', '""', '"  "'])
def test_scenario_name_must_be_a_string(capsys, tmp_path, name):
    """A scenario's name becomes a folder name (as a slug): a number, a list or a blank is an
    error naming the field, not a folder called '5' or 'unnamed'."""
    path = write(tmp_path / "s.toml", f"[scenario]\nname = {name}\n")
    line = cli_error(capsys, "scenario", "validate", path, "--network", "teaching")
    assert f"{path}: [scenario]: name: must be a non-empty string" in line


def test_seeds_beyond_64_bits_and_overlong_names_are_clean_errors(tmp_path):
    """Found by the long fuzz runs: a root seed beyond 2**63 - 1 (the tables store seeds as
    64-bit integers) and an ``extends`` naming a file too long for the system to look up."""
    with pytest.raises(sim.ModelError, match="seed"):
        sim.simulate("teaching", seed=2**63, horizon_days=30).save(tmp_path / "run", plots=False)
    assert not (tmp_path / "run" / "manifest.json").exists()
    with pytest.raises(sim.ModelError, match="seed"):
        sim.monte_carlo("teaching", reps=1, seed=2**63, workers=1)
    path = tmp_path / "long.toml"
    path.write_text(f'extends = "{"x" * 5000}"\n[scenario]\nname = "long"\n')
    with pytest.raises(sim.ScenarioError, match="extends"):
        sim.load_scenario(path)
