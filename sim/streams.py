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
from numpy.random.bit_generator import ISeedSequence

from .errors import ModelError

__all__ = ["Streams", "name_key", "BlockSampler", "SwitchingSampler"]

# numpy's SeedSequence hash (numpy/random/bit_generator.pyx; its output is part of numpy's
# stream-compatibility policy), for Streams.prepare: 32-bit words, arithmetic modulo 2**32
_MASK32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_POOL_SIZE = 4
_NAME_WORDS = 4            # name_key() gives four words, each below 2**32


def _words(n: int) -> list[int]:
    """An int as SeedSequence reads it: 32-bit words, least significant first ([0] for 0)."""
    out = [n & _MASK32]
    n >>= 32
    while n:
        out.append(n & _MASK32)
        n >>= 32
    return out


def _hash_consts(start: int, mult: int, count: int) -> list[tuple[int, int]]:
    """The hash constant before and after each step (they do not depend on the data)."""
    out = []
    h = start
    for _ in range(count):
        nxt = (h * mult) & _MASK32
        out.append((h, nxt))
        h = nxt
    return out


def _hashmix(value, consts: tuple[int, int]):
    """SeedSequence's hashmix, given the constant before and after its step (ints or uint32
    arrays): ``(value ^ before) * after``, then the shift."""
    before, after = consts
    value = ((value ^ before) * after) & _MASK32 if isinstance(value, int) \
        else (value ^ np.uint32(before)) * np.uint32(after)
    return value ^ (value >> 16)


def _mix(x, y):
    """SeedSequence's mix of two words (ints or uint32 arrays)."""
    r = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK32 if isinstance(x, int) \
        else np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
    return r ^ (r >> 16)


class _PresetSeeds(ISeedSequence):
    """Hands a bit generator the words ``SeedSequence.generate_state`` would give it, computed
    in advance by :meth:`Streams.prepare` (PCG64 asks for four 64-bit words)."""

    __slots__ = ("_state",)

    def __init__(self, state: np.ndarray) -> None:
        self._state = state

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != len(self._state) or np.dtype(dtype) != self._state.dtype:
            raise ValueError("preset seeds hold only the state PCG64 asks for")
        return self._state.copy()


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
        self._preset: dict = {}     # name -> PCG64's seed words, from prepare()

    def seed_sequence(self, name: tuple | str) -> np.random.SeedSequence:
        """The :class:`numpy.random.SeedSequence` of stream *name*."""
        return np.random.SeedSequence(self.seed, spawn_key=(self.replication, *name_key(name)))

    def generator(self, name: tuple | str) -> np.random.Generator:
        """A fresh generator for stream *name* (same name, same numbers)."""
        words = self._preset.pop(name, None)
        if words is not None:
            return np.random.Generator(np.random.PCG64(_PresetSeeds(words)))
        return np.random.Generator(np.random.PCG64(self.seed_sequence(name)))

    def prepare(self, names) -> None:
        """Compute the seeds of streams *names* in one pass, so that :meth:`generator` gives
        each of them without building a ``SeedSequence`` (most of what a generator costs;
        a replication opens one or two per lane and demand stream). The generators
        are identical to those of :meth:`seed_sequence`: the SeedSequence hash is run on the
        words that all these streams share (seed, replication) once, and on their own words
        (the name's key, which comes last) for all names at once, as uint32 arithmetic."""
        names = [n for n in dict.fromkeys(names) if n not in self._preset]
        if not names:
            return
        # SeedSequence(seed, spawn_key=(replication, *key)) hashes, in order: the seed's words
        # (padded with zeros to the pool size, as a spawn key follows), the replication's
        # words, then the key's four words
        shared = _words(self.seed)
        shared += [0] * (_POOL_SIZE - len(shared))
        shared += _words(self.replication)
        n_mix = _POOL_SIZE + _POOL_SIZE * (_POOL_SIZE - 1) \
            + _POOL_SIZE * (len(shared) - _POOL_SIZE + _NAME_WORDS)
        consts = iter(_hash_consts(_INIT_A, _MULT_A, n_mix))
        pool = [_hashmix(shared[i], next(consts)) for i in range(_POOL_SIZE)]
        for i_src in range(_POOL_SIZE):
            for i_dst in range(_POOL_SIZE):
                if i_src != i_dst:
                    pool[i_dst] = _mix(pool[i_dst], _hashmix(pool[i_src], next(consts)))
        for word in shared[_POOL_SIZE:]:
            for i_dst in range(_POOL_SIZE):
                pool[i_dst] = _mix(pool[i_dst], _hashmix(word, next(consts)))
        keys = np.array([name_key(n) for n in names], dtype=np.uint32)
        cols = [np.full(len(names), v, dtype=np.uint32) for v in pool]
        for i_src in range(_NAME_WORDS):
            for i_dst in range(_POOL_SIZE):
                cols[i_dst] = _mix(cols[i_dst], _hashmix(keys[:, i_src], next(consts)))
        # generate_state(4, uint64): eight 32-bit words from the pool, in turn, read in
        # little-endian pairs
        out = np.empty((len(names), 8), dtype=np.uint32)
        for i, step in enumerate(_hash_consts(_INIT_B, _MULT_B, 8)):
            out[:, i] = _hashmix(cols[i % _POOL_SIZE], step)
        state = out.astype("<u4").view("<u8").astype(np.uint64)
        self._preset.update(zip(names, state, strict=True))


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
