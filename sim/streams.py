"""Named random streams derived from one seed.

Every stochastic component asks for its generator by a *name*, e.g. ``("demand", "us_auto",
"ndfeb")`` or ``("lead_time", "lane:lynas_my->us_magnets:ndpr_oxide")``. The stream for a name is
``SeedSequence(root_seed, spawn_key=(replication, *hash(name)))``: it depends only on the root
seed, the replication index and the name, never on which other components exist or in what
order they were created. Adding a node therefore does not shift any other node's numbers, and
replication *i* of two scenarios sees the same draws for the same components (common random
numbers). Nothing here touches global random state.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from .errors import ModelError

__all__ = ["Streams", "name_key", "BlockSampler", "SwitchingSampler"]


@functools.lru_cache(maxsize=1 << 16)     # the same names recur in every replication
def name_key(name: tuple | str) -> tuple[int, ...]:
    """A stable tuple of 32-bit integers identifying *name* (independent of Python's hash seed)."""
    text = "\x1f".join(map(str, name)) if isinstance(name, tuple) else str(name)
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """Factory of independent, reproducible generators keyed by name.

    Parameters
    ----------
    seed:
        Root seed (a non-negative int).
    replication:
        Replication index; Monte Carlo run *i* uses ``replication=i``.
    """

    def __init__(self, seed: int = 0, replication: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ModelError(f"must be a non-negative integer, got {seed!r}", field="seed")
        if isinstance(replication, bool) or not isinstance(replication, (int, np.integer)) or replication < 0:
            raise ModelError(f"must be a non-negative integer, got {replication!r}",
                             field="replication")
        self.seed = int(seed)
        self.replication = int(replication)

    def seed_sequence(self, name: tuple | str) -> np.random.SeedSequence:
        """The :class:`numpy.random.SeedSequence` of stream *name*."""
        return np.random.SeedSequence(self.seed, spawn_key=(self.replication, *name_key(name)))

    def generator(self, name: tuple | str) -> np.random.Generator:
        """A fresh generator for stream *name* (same name, same numbers)."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(name)))


class BlockSampler:
    """Draws from a distribution in blocks so the hot loop pays one list index per value.

    *rng* is a generator, or a :class:`Streams` whose stream *name* is opened on the first
    draw (lanes that never ship then cost nothing to set up)."""

    __slots__ = ("dist", "rng", "name", "block", "_buf", "_i")

    def __init__(self, dist, rng, name=None, block: int = 64) -> None:
        self.dist = dist
        self.rng = rng
        self.name = name
        self.block = block
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i >= len(self._buf):
            if self.name is not None:
                self.rng = self.rng.generator(self.name)
                self.name = None
            self._buf = self.dist.sample(self.rng, self.block).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


class SwitchingSampler:
    """One draw per call from stream *name* of *streams*, from the distribution passed to
    that call (e.g. a licence review time that a policy step changes), with exactly the values
    of one ``dist.sample(rng, 1)`` per call, but drawn in blocks so the common call costs a
    list index.

    When the distribution changes in mid-block, the stream is wound back to the start of the
    block and the values already used are drawn again (so the stream is where single draws
    would have left it) before a block of the new distribution is drawn. Distributions whose
    block and single draws differ (``blockable`` False) are drawn one at a time."""

    __slots__ = ("streams", "name", "block", "rng", "dist", "_buf", "_i", "_state")

    def __init__(self, streams: Streams, name: tuple | str, block: int = 64) -> None:
        self.streams = streams
        self.name = name
        self.block = block
        self.rng: np.random.Generator | None = None     # opened on the first draw
        self.dist = None        # the distribution of the current block
        self._buf: list[float] = []
        self._i = 0
        self._state = None      # the stream's state at the start of the block

    def __call__(self, dist) -> float:
        i = self._i
        if dist is not self.dist or i >= len(self._buf):
            return self._refill(dist)
        self._i = i + 1
        return self._buf[i]

    def _refill(self, dist) -> float:
        if self.rng is None:
            self.rng = self.streams.generator(self.name)
        rng = self.rng
        if self.dist is not None and self._i < len(self._buf):
            rng.bit_generator.state = self._state     # unused values left: wind back
            self.dist.sample(rng, self._i)
        if not dist.blockable:
            self.dist, self._buf, self._i = None, [], 0
            return float(dist.sample(rng, 1)[0])
        self._state = rng.bit_generator.state
        self.dist = dist
        self._buf = dist.sample(rng, self.block).tolist()
        self._i = 1
        return self._buf[0]
