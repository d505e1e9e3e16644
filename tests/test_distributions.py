"""The distributions of :mod:`sim.distributions`: every one samples with the mean and variance it
reports (within a few standard errors of a large sample), stays in its support, reads back from
its own ``to_dict()``, and scales as a constant multiple; bad tables raise a ModelError that
names the parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.distributions import DIST_NAMES, from_spec

N = 200_000
Z = 4.5         # standard errors allowed: a false alarm about once in 150,000 checks

SPECS = {
    "fixed": {"dist": "fixed", "value": 3.5},
    "uniform": {"dist": "uniform", "min": 2, "max": 9},
    "uniform_int": {"dist": "uniform_int", "min": 1, "max": 9},
    "triangular": {"dist": "triangular", "min": 14, "mode": 30, "max": 60},
    "lognormal": {"dist": "lognormal", "mean": 30, "sd": 8},
    "gamma": {"dist": "gamma", "mean": 3, "cv": 0.7},
    "normal": {"dist": "normal", "mean": 30, "sd": 3},     # clipping at 0 is negligible here
    "exponential": {"dist": "exponential", "mean": 2},
}


def test_every_distribution_is_covered():
    """The table above names every distribution that from_spec builds."""
    assert set(SPECS) == set(DIST_NAMES)


def _check_moments(x: np.ndarray, mean: float, variance: float) -> None:
    """Sample mean and variance within Z standard errors of *mean* and *variance*."""
    se_mean = math.sqrt(variance / len(x)) if variance > 0 else 0.0
    assert abs(x.mean() - mean) <= Z * se_mean + 1e-12, (x.mean(), mean, se_mean)
    dev2 = (x - x.mean()) ** 2
    se_var = dev2.std() / math.sqrt(len(x))
    assert abs(x.var() - variance) <= Z * se_var + 1e-12, (x.var(), variance, se_var)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_samples_have_the_reported_mean_and_variance(name):
    """``sample`` draws with ``mean`` and ``variance`` (analytic, from the parameters)."""
    dist = from_spec(SPECS[name], name)
    x = dist.sample(np.random.default_rng(20251110), N)
    assert x.shape == (N,)
    _check_moments(x, dist.mean, dist.variance)
    assert dist.sd == pytest.approx(math.sqrt(dist.variance))


def test_parameters_give_the_textbook_moments():
    """The reported moments are those of the parameters: e.g. uniform (a+b)/2 and (b-a)^2/12,
    triangular (a+b+c)/3, uniform_int over its integers, cv = sd / mean."""
    assert from_spec(SPECS["uniform"]).mean == pytest.approx(5.5)
    assert from_spec(SPECS["uniform"]).variance == pytest.approx(49 / 12)
    assert from_spec(SPECS["triangular"]).mean == pytest.approx((14 + 30 + 60) / 3)
    assert from_spec(SPECS["uniform_int"]).mean == pytest.approx(5.0)
    assert from_spec(SPECS["uniform_int"]).variance == pytest.approx(np.var(np.arange(1, 10)))
    assert from_spec(SPECS["gamma"]).sd == pytest.approx(0.7 * 3)
    assert from_spec(SPECS["exponential"]).variance == pytest.approx(4.0)
    assert from_spec(7).mean == 7.0 and from_spec(7).variance == 0.0


def test_samples_stay_in_the_support():
    """Bounded distributions stay within their bounds; uniform_int draws integers; nothing is
    negative; a fixed value is always itself."""
    rng = np.random.default_rng(1)
    u = from_spec(SPECS["uniform"]).sample(rng, N)
    assert u.min() >= 2 and u.max() <= 9
    t = from_spec(SPECS["triangular"]).sample(rng, N)
    assert t.min() >= 14 and t.max() <= 60
    k = from_spec(SPECS["uniform_int"]).sample(rng, N)
    assert np.array_equal(k, np.round(k)) and set(np.unique(k)) == set(range(1, 10))
    for name in SPECS:
        assert from_spec(SPECS[name]).sample(rng, 1000).min() >= 0, name
    assert np.all(from_spec(SPECS["fixed"]).sample(rng, 100) == 3.5)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_to_dict_reads_back(name):
    """``from_spec(d.to_dict())`` is the same distribution, and samples the same numbers."""
    dist = from_spec(SPECS[name])
    again = from_spec(dist.to_dict())
    assert again == dist
    a = dist.sample(np.random.default_rng(5), 50)
    b = again.sample(np.random.default_rng(5), 50)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["uniform", "gamma", "lognormal", "uniform_int"])
def test_scaled_is_a_constant_multiple(name):
    """``scaled(f)`` multiplies every draw by f, the mean by f and the variance by f^2."""
    dist = from_spec(SPECS[name])
    scaled = dist.scaled(2.5)
    assert scaled.mean == pytest.approx(2.5 * dist.mean)
    assert scaled.variance == pytest.approx(2.5 ** 2 * dist.variance)
    a = dist.sample(np.random.default_rng(9), 100)
    b = scaled.sample(np.random.default_rng(9), 100)
    np.testing.assert_allclose(b, 2.5 * a, rtol=1e-15)


@pytest.mark.parametrize(("spec", "message"), [
    ({"dist": "weibull", "mean": 3}, "unknown dist 'weibull'"),
    ({"dist": "uniform", "min": 5}, "missing parameter 'max'"),
    ({"dist": "uniform", "min": 5, "max": 2}, "max (2.0) must be >= min (5.0)"),
    ({"dist": "gamma", "mean": 3, "sd": -1}, "'sd' must be >= 0"),
    ({"dist": "lognormal", "mean": 3, "sd": 1, "cv": 0.2}, "either 'sd' or 'cv'"),
    ({"dist": "uniform_int", "min": 1.5, "max": 4}, "bounds must be integers"),
    ({"dist": "exponential", "mean": "two"}, "'mean' must be a number"),
    (True, "expected a number or a distribution table"),
])
def test_bad_tables_name_the_problem(spec, message):
    """Every bad table raises a ModelError that starts with where it is and names the
    parameter."""
    with pytest.raises(sim.ModelError) as info:
        from_spec(spec, "lanes[3].lead_time")
    text = str(info.value)
    assert text.startswith("lanes[3].lead_time: ")
    assert message in text
