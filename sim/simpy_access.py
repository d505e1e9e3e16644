"""The one place that reads or writes SimPy's private state.

The engine (:mod:`sim.engine`) runs SimPy's event loop itself (``Environment.step`` inlined
in :meth:`Model._loop <sim.engine.Model._loop>`) and puts its own entries on SimPy's event
queue, keyed as SimPy keys its events. That needs a few of SimPy's internals, which its public
API does not offer: the event queue (``Environment._queue``), the counter of event ids
(``Environment._eid``), the clock (``Environment._now``, which :class:`Environment` takes from
the model), an event's outcome (``Event._ok``,
``Event._value``, ``_defused``) and a process's generator (``Process._generator``). Every such
access is a function here, so that a SimPy release that changes them breaks one small module,
and the tests that cover it (tests/test_simpy_access.py), rather than the engine.

Tested with SimPy 4.1.2 (the 4.1 series); pyproject.toml pins ``simpy>=4.1,<4.2`` to that
series. Widen the pin only after the full test suite (the digest
test of both engine builds included) passes on the new release.
"""

from __future__ import annotations

import simpy
from simpy.events import Event

__all__ = ["TESTED_SIMPY", "Environment", "event_queue", "event_ids", "triggered_event",
           "raise_if_failed", "close_process_waiting_on"]

TESTED_SIMPY = ">=4.1,<4.2"       # the versions this module is tested with (pyproject's pin)

_new_event = object.__new__


class Environment(simpy.Environment):
    """A SimPy environment that keeps no clock of its own: its time (``env.now``, and
    SimPy's ``_now``, to which its scheduling adds delays) is the ``now`` attribute of
    *clock*, the engine's model, whose event loop advances it. So SimPy, and any code that
    reads ``env.now``, see the time of the event being processed, the engine's own entries
    included, at no cost per event."""

    def __init__(self, clock) -> None:
        self._clock = clock
        super().__init__()

    @property
    def _now(self) -> float:
        return self._clock.now

    @_now.setter
    def _now(self, value: float) -> None:
        self._clock.now = value

    def detach(self) -> None:
        """Keep the time in force from now on without the clock (the model taken apart:
        no reference cycle between the two is left)."""
        self._clock = _StoppedClock(self._clock.now)


class _StoppedClock:
    """The clock of an environment detached from its model: the time it stopped at."""

    __slots__ = ("now",)

    def __init__(self, now: float) -> None:
        self.now = now


def event_queue(env: simpy.Environment) -> list:
    """SimPy's event queue: a heap (``heapq``) of ``(time, priority, event id, event)``
    entries, the list itself (the engine pushes onto it and pops from it)."""
    return env._queue


def event_ids(env: simpy.Environment):
    """SimPy's counter of event ids (``next()`` of it is the id of a newly scheduled
    event): entries the engine schedules take their ids from it, so they interleave with
    SimPy's own events exactly as ``Environment.schedule`` would order them."""
    return env._eid


def triggered_event(env: simpy.Environment) -> Event:
    """A new :class:`simpy.Event` of *env* that has already succeeded (with value None), not
    yet on the queue: what ``env.event().succeed()`` makes, without scheduling it (the caller
    puts it on the queue at the time and priority it wants)."""
    ev = _new_event(Event)
    ev.env = env
    ev.callbacks = []
    ev._ok = True
    ev._value = None
    return ev


def raise_if_failed(event: Event) -> None:
    """After *event*'s callbacks ran: raise its exception if it failed and nobody handled it
    (as ``Environment.step`` does)."""
    if not event._ok and not hasattr(event, "_defused"):
        exc = type(event._value)(*event._value.args)
        exc.__cause__ = event._value
        raise exc


def close_process_waiting_on(event: Event) -> None:
    """Close the generator of every process that waits on *event* (a model taken apart
    leaves no process suspended)."""
    for callback in event.callbacks or ():
        proc = getattr(callback, "__self__", None)
        if isinstance(proc, simpy.Process):
            proc._generator.close()
