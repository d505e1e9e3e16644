"""Fuzzing: mutated shipped networks and scenarios, and random CLI arguments, end in a clean
error (status 2, one ``error:`` line) or a valid run, never a traceback, and never write outside
the folder chosen (``--out``, else ``./results``).

The mutations come from a seeded generator (:class:`Mutator`), so a failure names the seed and
case that reproduce it: ``FUZZ_SEED=<seed> pytest tests/test_fuzz.py``. The default run tries a
few hundred cases of each kind (20-40 s); ``-m slow`` tries six times as many, from other
seeds.
A kill -9 during ``mc --out`` must leave no folder that looks complete.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import tomli_w

from sim import cli

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "networks").glob("*.toml")) + \
    sorted((REPO / "networks" / "scenarios").glob("*.toml"))
SEED = int(os.environ.get("FUZZ_SEED", "20251207"))
HOSTILE_NAMES = ["../../escape", "/tmp/../escape-abs", "/" + "x/" * 50, "a/b/c", "..", ".", "", " ", "x" * 300,
                 "con", "nul\x00byte", "new\nline", "tab\tname", "ünï/cödé"]


def _deep(depth: int):
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


VALUES = [-1, 0, 1, -1e308, 1e308, float("nan"), float("inf"), 2**63, -0.0, 0.5, 1.5, 100,
          "", "x", "../x", "/abs/x", "2025-13-45", "all", "CN", "ZZ", "licensing", "ban",
          True, False, [], {}, [1, "a"], {"dist": "triangular", "min": 5, "mode": 1, "max": 2},
          {"dist": "nope"}, dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2025, 6, 1),
          dt.datetime(2025, 1, 1, 12, 0), dt.time(1, 2), _deep(60), ["defense"], "x" * 5000]


class Mutator:
    """Seeded mutations of TOML-shaped data and of file bytes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def _paths(self, doc, prefix=()):
        """Every (container, key) pair in *doc*."""
        out = []
        items = doc.items() if isinstance(doc, dict) else enumerate(doc) \
            if isinstance(doc, list) else ()
        for k, v in items:
            if k in ("source", "note", "description"):     # free text: mutating it says little
                continue
            out.append((doc, k))
            out += self._paths(v, prefix + (k,))
        return out

    def mutate_doc(self, doc: dict) -> dict:
        """1-3 structural mutations: replace a value, delete a key, add an unknown key, copy
        an array item, or give the file a hostile name."""
        doc = copy.deepcopy(doc)
        for _ in range(self.rng.randint(1, 3)):
            paths = self._paths(doc)
            if not paths:
                break
            parent, key = self.rng.choice(paths)
            op = self.rng.random()
            if op < 0.5:
                parent[key] = copy.deepcopy(self.rng.choice(VALUES))
            elif op < 0.65 and isinstance(parent, dict):
                del parent[key]
            elif op < 0.75 and isinstance(parent, dict):
                parent[self.rng.choice(["bogus", "Source", "nodes", "x y"])] = \
                    copy.deepcopy(self.rng.choice(VALUES))
            elif op < 0.85 and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]))
            else:
                head = doc.setdefault("scenario" if "scenario" in doc or "network" not in doc
                                      else "network", {})
                if isinstance(head, dict):
                    head["name"] = self.rng.choice(HOSTILE_NAMES)
        return doc

    def mutate_bytes(self, data: bytes) -> bytes:
        """Byte-level damage: flips, truncation, random bytes, another encoding, a BOM."""
        op = self.rng.randrange(5)
        b = bytearray(data)
        if op == 0:
            for _ in range(self.rng.randint(1, 8)):
                i = self.rng.randrange(len(b))
                b[i] = self.rng.randrange(256)
        elif op == 1:
            b = b[:self.rng.randrange(len(b))]
        elif op == 2:
            i = self.rng.randrange(len(b))
            b[i:i] = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))
        elif op == 3:
            b = bytearray(data.decode("utf-8").encode(self.rng.choice(["utf-16", "utf-32",
                                                                        "latin-1"]),
                                                       errors="replace"))
        else:
            b = bytearray(b"\xef\xbb\xbf" + data)
        return bytes(b)


def _dump(doc: dict) -> bytes | None:
    try:
        return tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):       # a value TOML cannot hold (e.g. a None)
        return None


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _main(argv: list[str], capsys) -> int:
    """Run the CLI in-process: status 0 or 2 and, on 2, one ``error:`` line (argparse: its
    usage and the error). Any other exception propagates and fails the test."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:          # argparse: usage error (2) or --help (0)
        code = exc.code
        cap = capsys.readouterr()
        assert code in (0, 2), (argv, cap.err)
        assert "Traceback" not in cap.err
        return code
    cap = capsys.readouterr()
    assert code in (0, 2), (argv, cap.err)
    assert "Traceback" not in cap.err
    if code == 2:
        lines = [line for line in cap.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, cap.err)
    return code


def _inside(new: set[Path], roots: list[Path]) -> list[Path]:
    """The files of *new* that lie outside every one of *roots*."""
    roots = [r.resolve() for r in roots]
    return sorted(p for p in new if not any(r == p.resolve() or r in p.resolve().parents
                                            for r in roots))


def fuzz_files(tmp_path: Path, capsys, monkeypatch, cases: int, seed: int) -> dict:
    """Validate (and where valid, run) *cases* mutated copies of the shipped files."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    mut = Mutator(seed)
    counts = {"error": 0, "valid": 0, "ran": 0}
    for case in range(cases):
        src = mut.rng.choice(SHIPPED)
        is_scenario = src.parent.name == "scenarios"
        data = src.read_bytes()
        if mut.rng.random() < 0.7:
            data = _dump(mut.mutate_doc(tomllib.loads(data.decode()))) or data
        else:
            data = mut.mutate_bytes(data)
        path = tmp_path / f"case{case}.toml"
        path.write_bytes(data)
        before = _snapshot(tmp_path)
        where = f"seed {seed} case {case} from {src.name}"
        if is_scenario:
            code = _main(["scenario", "validate", str(path), "--network", "rare_earth_2025"],
                         capsys)
            run = ["run", "--network", "rare_earth_2025", "--scenario", str(path), "--days",
                   "15", "--no-plots"]
        else:
            code = _main(["network", "validate", str(path)], capsys)
            run = ["run", "--network", str(path), "--days", "15", "--no-plots", "--out",
                   str(work / f"out{case}")]
        counts["error" if code == 2 else "valid"] += 1
        if code == 0:
            # what validates runs: validate and run share one validation
            assert _main(run, capsys) == 0, where
            counts["ran"] += 1
        stray = _inside(_snapshot(tmp_path) - before - {path}, [work / "results", work])
        assert not stray, (where, stray)
    return counts


def fuzz_cli(tmp_path: Path, capsys, monkeypatch, cases: int, seed: int) -> dict:
    """Run *cases* random command lines (valid and invalid options and values)."""
    import sim.experiment

    monkeypatch.setattr(sim.experiment, "SCHEDULER_TIMEOUT_S", 0.5)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "afile").write_text("x")
    rng = random.Random(seed)
    evil = tmp_path / "evil.toml"
    evil.write_text('[scenario]\nname = "../../evil"\nstart = 2025-01-01\n')
    values = {
        "--network": ["teaching", "teaching", "", "nope", "networks", str(evil), "/dev/null"],
        "--scenario": ["baseline", "truce-holds", str(evil), "", "nope", "networks"],
        "--reps": ["1", "2", "0", "-1", "x", "1.5"],
        "--seed": ["0", "7", "-1", "x", "99999999999999999999"],
        "--workers": ["1", "0", "-3", "x"],
        "--days": ["10", "20", "0", "-5", "nan", "inf", "1e12", "x", "36526"],
        "--start": ["2025-01-01", "2025-02-30", "x", ""],
        "--chunk-size": ["1", "0", "-1", "x"],
        "--out": ["o1", "o2", "afile", "afile/sub", "", "o1/../o3"],
        "--scheduler": ["bogus:::", ""],
        "--target": ["fill_rate|network=0.5", "fill_rate|network=-1", "x", "nokpi|x=0.1",
                     "fill_rate|network=nan"],
        "--max-reps": ["2", "0", "-1", "x"],
        "--track": ["nds_us/ndfeb_magnet", "x", "nowhere/m"],
        "--param": ["nodes.nds_us.initial.ndfeb_magnet=0,5", "truce.renewal_probability=0.5",
                    "bogus=1", "x", "nodes.nds_us.initial.ndfeb_magnet=-1",
                    "nodes.nds_us.initial.ndfeb_magnet=[1]"],
        "--design": ["grid", "lhs", "x"],
        "--samples": ["2", "0", "x"],
        "--max-failures": ["0.5", "0", "1", "2", "x"],
        "--format": ["csv", "xml"],
        "--compare": ["truce-holds", str(evil), "nope"],
        "--scenarios": ["baseline", str(evil), "nope"],
    }
    options = {
        "run": ["--network", "--scenario", "--seed", "--days", "--start", "--out", "--format",
                "--compare"],
        "mc": ["--network", "--scenario", "--reps", "--seed", "--workers", "--days", "--out",
               "--chunk-size", "--scheduler", "--target", "--max-reps", "--track",
               "--max-failures"],
        "compare": ["--network", "--reps", "--seed", "--workers", "--days", "--out",
                    "--chunk-size", "--scenarios"],
        "sweep": ["--network", "--scenario", "--reps", "--seed", "--workers", "--days", "--out",
                  "--chunk-size", "--param", "--design", "--samples", "--max-failures"],
    }
    counts = {"error": 0, "ok": 0}
    for case in range(cases):
        command = rng.choice(["run", "mc", "compare", "sweep", "network", "scenario", "plot"])
        if command == "network":
            argv = ["network", rng.choice(["show", "validate", "list"]),
                    rng.choice(values["--network"])]
            if argv[1] == "list":
                argv = argv[:2]
        elif command == "scenario":
            argv = ["scenario", "validate", rng.choice(values["--scenario"]), "--network",
                    rng.choice(values["--network"])]
        elif command == "plot":
            argv = ["plot", rng.choice(["o1", "o2", "afile", "", "../", str(tmp_path)])]
        else:
            argv = [command]
            chosen = rng.sample(options[command], rng.randint(0, 4))
            for need in {"compare": ["--scenarios"], "sweep": ["--param"]}.get(command, []):
                if need not in chosen:
                    chosen.append(need)
            for opt in chosen:
                argv += [opt, rng.choice(values[opt])]
                if opt == "--scenarios":
                    argv.append(rng.choice(values[opt]))
            # keep each case short: few reps, one worker, a short horizon, no figures
            for opt, default in (("--reps", "2"), ("--workers", "1"), ("--days", "10")):
                if command != "run" or opt == "--days":
                    if opt not in argv and opt in options.get(command, []):
                        argv += [opt, default]
            argv += ["--no-plots"] + (["--quiet"] if command != "run" else [])
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        roots = [work / out] if out else [work / "results"]
        if command == "plot" and len(argv) > 1 and argv[1]:
            roots = [work / argv[1]]
        before = _snapshot(tmp_path)
        code = _main(argv, capsys)
        counts["error" if code == 2 else "ok"] += 1
        stray = _inside(_snapshot(tmp_path) - before, roots)
        assert not stray, (f"seed {seed} case {case}", argv, stray)
    return counts


def test_fuzz_files(tmp_path, capsys, monkeypatch):
    """Mutated shipped networks and scenarios: clean error or valid run, nothing written
    outside the chosen folder; both outcomes occur."""
    counts = fuzz_files(tmp_path, capsys, monkeypatch, cases=300, seed=SEED)
    assert counts["error"] > 0 and counts["valid"] > 0, counts
    assert not Path("/escape-abs").exists()


def test_fuzz_cli(tmp_path, capsys, monkeypatch):
    """Random command lines: clean error or a valid run, nothing outside the chosen folder."""
    counts = fuzz_cli(tmp_path, capsys, monkeypatch, cases=200, seed=SEED)
    assert counts["error"] > 0 and counts["ok"] > 0, counts


@pytest.mark.slow
@pytest.mark.parametrize("offset", range(3))
def test_fuzz_files_long(tmp_path, capsys, monkeypatch, offset):
    """The file fuzz with more cases and other seeds."""
    fuzz_files(tmp_path, capsys, monkeypatch, cases=600, seed=SEED + 1000 + offset)


@pytest.mark.slow
@pytest.mark.parametrize("offset", range(3))
def test_fuzz_cli_long(tmp_path, capsys, monkeypatch, offset):
    """The command-line fuzz with more cases and other seeds."""
    fuzz_cli(tmp_path, capsys, monkeypatch, cases=400, seed=SEED + 2000 + offset)


def _check_not_complete_looking(out: Path, reps: int) -> None:
    """A folder with a manifest.json is complete: every file it lists is there and the
    tables load with every replication."""
    from sim.experiment import MonteCarloResults

    man = out / "manifest.json"
    if man.exists():
        meta = json.loads(man.read_text())
        assert all((out / f).exists() for f in meta["files"])
        res = MonteCarloResults.load(out)
        assert res.reps + len(res.failures) == reps


def _kill_mc_while_writing(out: Path, rng: random.Random, started) -> None:
    """Start ``mc --out OUT`` (with figures, the slowest part of saving), wait until
    *started(out)* says it is writing, let it go on a random moment, and kill -9 its process
    group."""
    args = [sys.executable, "-m", "sim", "mc", "--network", "teaching", "--reps", "3",
            "--workers", "1", "--days", "30", "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not started(out) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.random() * 1.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def kill_9_cases(tmp_path: Path, capsys, seed: int, kills: int) -> None:
    """*kills* runs of ``mc --out`` killed while writing: into a fresh folder, and over a
    folder that holds a complete earlier result."""
    rng = random.Random(seed)
    for k in range(kills):
        fresh = tmp_path / f"fresh{k}"
        _kill_mc_while_writing(fresh, rng, lambda out: out.exists())
        _check_not_complete_looking(fresh, 3)
        old = tmp_path / f"old{k}"
        assert cli.main(["mc", "--network", "teaching", "--reps", "3", "--workers", "1",
                         "--days", "30", "--out", str(old), "--quiet", "--no-plots"]) == 0
        capsys.readouterr()
        assert (old / "manifest.json").exists()
        _kill_mc_while_writing(old, rng, lambda out: not (out / "manifest.json").exists())
        _check_not_complete_looking(old, 3)


def test_kill_9_during_mc_leaves_no_complete_looking_folder(tmp_path, capsys):
    """``mc --out`` killed with SIGKILL while it writes its tables and figures, into a fresh
    folder and over a complete earlier result: the folder never holds a manifest.json unless
    it is complete (every file the manifest lists is there and the tables load)."""
    kill_9_cases(tmp_path, capsys, SEED, kills=1)


@pytest.mark.slow
def test_kill_9_during_mc_long(tmp_path, capsys):
    """The kill -9 test at more random moments."""
    kill_9_cases(tmp_path, capsys, SEED + 1, kills=6)
