"""The benchmark helpers measure what they say (the timed figures themselves are never
asserted: they live in the benchmark scripts' output)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def memory_module():
    pytest.importorskip("psutil")
    sys.path.insert(0, str(BENCH))
    try:
        import memory
        yield memory
    finally:
        sys.path.remove(str(BENCH))


def test_peak_memory_sees_an_allocation_and_pss_is_at_most_rss(memory_module):
    """A 200 MB array allocated (and touched) inside the block raises the peak resident
    memory by about that much, and the proportional set size never exceeds the resident."""
    with memory_module.PeakMemory(interval=0.01) as before:
        pass
    with memory_module.PeakMemory(interval=0.01) as during:
        block = np.ones(200 * 2**20 // 8)
        time.sleep(0.2)                           # several sampling intervals
        del block
    grown = (during.peak_rss_total - before.peak_rss_total) / 2**20
    assert 150 < grown < 400, grown
    assert during.peak_rss_self <= during.peak_rss_total
    if during.peak_pss_total is not None:          # Linux
        assert 0 < during.peak_pss_total <= during.peak_rss_total * 1.01


def test_compare_versions_runs_a_tree_against_itself_in_separate_processes():
    """``compare_versions.py --processes`` drives one process per tree and reports the same
    events and fill rate for a tree compared with itself."""
    root = BENCH.parent
    out = subprocess.run([sys.executable, str(BENCH / "compare_versions.py"), str(root), str(root),
                          "--network", "small", "--reps", "2", "--processes"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("A ")
    assert lines[1].startswith("B ")
    tail_a = lines[0].split("events")[1]
    tail_b = lines[1].split("events")[1]
    assert tail_a == tail_b                       # same events and fill rate
    assert "separate processes" in lines[2]
    assert "total time" in lines[2]
