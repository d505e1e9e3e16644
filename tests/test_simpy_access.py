"""sim.simpy_access, the one module that reads SimPy's private state, against the installed
SimPy: each function sees what SimPy itself uses, and the installed SimPy is in the range the
module (and pyproject's pin) says it is tested with."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import pytest
import simpy
from packaging.specifiers import SpecifierSet

from sim import simpy_access as sa


def test_installed_simpy_is_in_the_tested_range(repo_root):
    """The installed SimPy is one the module is tested with, and pyproject pins that range."""
    tested = SpecifierSet(sa.TESTED_SIMPY)
    assert version("simpy") in tested
    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.replace(" ", "").startswith("simpy")]
    assert len(pins) == 1 and SpecifierSet(pins[0].replace(" ", "")[len("simpy"):]) == tested


def test_queue_and_ids_are_simpy_s_own():
    """Entries pushed on ``event_queue`` with ids from ``event_ids`` are ordered with SimPy's
    own events by (time, priority, id)."""
    import heapq

    env = simpy.Environment()
    seen = []
    env.timeout(2.0).callbacks.append(lambda ev: seen.append("timeout"))
    ev = sa.triggered_event(env)
    ev.callbacks.append(lambda ev: seen.append("ours"))
    # same time, higher priority (0 < SimPy's NORMAL 1): ours runs first though scheduled later
    heapq.heappush(sa.event_queue(env), (2.0, 0, next(sa.event_ids(env)), ev))
    assert sa.event_queue(env) is env._queue
    env.run()
    assert seen == ["ours", "timeout"]


def test_environment_reads_its_clock():
    """The environment's time is its clock's ``now``, both ways: SimPy schedules from it and
    advances it; detached, it keeps the time it stopped at and forgets the clock."""
    class Clock:
        now = 3.0

    clock = Clock()
    env = sa.Environment(clock)
    assert env.now == 0.0 and clock.now == 0.0        # SimPy starts the clock at 0
    clock.now = 7.5
    assert env.now == 7.5
    timeout = env.timeout(1.0)
    assert sa.event_queue(env)[0][0] == 8.5 and sa.event_queue(env)[0][3] is timeout
    env.step()
    assert clock.now == 8.5 == env.now
    env.detach()
    clock.now = 100.0
    assert env.now == 8.5 and env._clock is not clock


def test_failed_event_raises_unless_defused():
    """``raise_if_failed`` raises a failed event's exception (chained to the original), as
    ``Environment.step`` does, and not once the event is defused."""
    env = simpy.Environment()
    ev = env.event()
    ev.fail(ValueError("bad"))
    with pytest.raises(ValueError, match="bad") as info:
        sa.raise_if_failed(ev)
    assert info.value.__cause__ is ev.value
    ev.defused = True
    sa.raise_if_failed(ev)
    sa.raise_if_failed(sa.triggered_event(env))


def test_closing_a_waiting_process():
    """``close_process_waiting_on`` ends the generator of a process waiting on an event."""
    env = simpy.Environment()
    closed = []

    def proc():
        try:
            yield env.timeout(5.0)
        finally:
            closed.append(True)

    env.process(proc())
    env.step()                       # the process starts and waits on its timeout
    waiting_on = [entry[3] for entry in sa.event_queue(env)]
    for event in waiting_on:
        sa.close_process_waiting_on(event)
    assert closed == [True]
