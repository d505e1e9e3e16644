"""Named random streams (sim/streams.py): a stream's numbers depend only on (seed,
replication, name); other streams, their number and their order of creation do not shift
them; block sampling gives exactly the numbers of drawing one at a time; bad seeds are
:class:`sim.ModelError` naming the field."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.distributions import Exponential, Fixed, LogNormal, Uniform, UniformInt
from sim.streams import BlockSampler, Streams, SwitchingSampler, name_key

NAME = ("demand", "us_auto", "ndfeb")


def _draws(streams: Streams, name, n: int = 20) -> np.ndarray:
    return streams.generator(name).random(n)


def test_same_seed_replication_and_name_give_the_same_draws():
    a = _draws(Streams(7, 3), NAME)
    b = _draws(Streams(7, 3), NAME)
    assert np.array_equal(a, b)
    # a second generator of the same name from the same factory starts over
    s = Streams(7, 3)
    assert np.array_equal(_draws(s, NAME), _draws(s, NAME))


def test_different_seed_replication_or_name_give_different_draws():
    base = _draws(Streams(7, 3), NAME)
    others = [_draws(Streams(8, 3), NAME), _draws(Streams(7, 4), NAME),
              _draws(Streams(7, 3), ("demand", "us_auto", "ndpr_oxide")),
              _draws(Streams(7, 3), "demand"),
              _draws(Streams(7, 3), ("lead_time", "lane:a->b:x"))]
    for other in others:
        assert not np.array_equal(base, other)
    # and none of them equals another one
    assert len({o.tobytes() for o in others}) == len(others)


def test_adding_or_reordering_streams_does_not_shift_a_stream():
    alone = _draws(Streams(11, 2), NAME)
    s = Streams(11, 2)
    for extra in (("lead_time", "lane:x->y:ore"), ("review", "cn"), "truce"):
        s.generator(extra).random(100)      # other streams used first, heavily
    assert np.array_equal(_draws(s, NAME), alone)


def test_prepare_gives_the_same_generators_as_seed_sequences():
    names = [NAME, ("lead_time", "lane:a->b:x"), "truce", ("a", 1, 2.5)]
    for seed, rep in ((0, 0), (12345, 17), (2**40 + 3, 2**33 + 1)):
        plain = [_draws(Streams(seed, rep), n) for n in names]
        s = Streams(seed, rep)
        s.prepare(names + [names[0]])     # repeated names are prepared once
        assert [_draws(s, n).tobytes() for n in names] == [p.tobytes() for p in plain]
        # a prepared seed is used once; later generators still give the same numbers
        assert np.array_equal(_draws(s, names[0]), plain[0])


def test_name_key_is_stable_and_distinguishes_tuples_from_joined_text():
    assert name_key(NAME) == name_key(("demand", "us_auto", "ndfeb"))
    assert len(name_key(NAME)) == 4 and all(0 <= w < 2**32 for w in name_key(NAME))
    assert name_key(("a", "b")) != name_key(("a", "c"))
    assert name_key(("ab",)) != name_key(("a", "b"))


@pytest.mark.parametrize("dist", [Exponential(3.0), Uniform(1.0, 4.0), LogNormal(5.0, 2.0),
                                  Fixed(2.0)], ids=repr)
@pytest.mark.parametrize("block", [1, 5, 64])
def test_block_sampler_gives_the_numbers_of_one_large_draw(dist, block):
    n = 150
    want = dist.sample(Streams(5, 1).generator(NAME), n)
    # opened lazily from a Streams and a name, or handed a generator
    lazy = BlockSampler(dist, Streams(5, 1), NAME, block=block)
    eager = BlockSampler(dist, Streams(5, 1).generator(NAME), block=block)
    if dist.blockable:
        # a block of k values is k single values in a row
        singles = Streams(5, 1).generator(NAME)
        assert np.array_equal(want[:10], [dist.sample(singles, 1)[0] for _ in range(10)])
    assert np.array_equal([lazy() for _ in range(n)], want)
    assert np.array_equal([eager() for _ in range(n)], want)


def test_switching_sampler_gives_the_values_of_single_draws():
    a, b = Exponential(10.0), Uniform(0.0, 2.0)
    plan = [a] * 5 + [b] * 70 + [a] * 3 + [UniformInt(1, 9)] * 4 + [b] * 130 + [a]
    got = SwitchingSampler(Streams(9, 4), NAME, block=16)
    rng = Streams(9, 4).generator(NAME)
    want = [float(d.sample(rng, 1)[0]) for d in plan]
    assert [got(d) for d in plan] == want


@pytest.mark.parametrize("field, kwargs", [
    ("seed", {"seed": -1}), ("seed", {"seed": 1.5}), ("seed", {"seed": True}),
    ("seed", {"seed": "7"}), ("replication", {"replication": -2}),
    ("replication", {"replication": None})])
def test_bad_seed_or_replication_is_a_model_error_naming_it(field, kwargs):
    with pytest.raises(sim.ModelError, match=f"{field}.*non-negative integer") as info:
        Streams(**kwargs)
    assert "\n" not in str(info.value)


def test_numpy_integer_seeds_are_accepted_and_equal_to_int_seeds():
    assert np.array_equal(_draws(Streams(np.int64(4), np.uint8(2)), NAME),
                          _draws(Streams(4, 2), NAME))
