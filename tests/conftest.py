"""Shared fixtures of the test suite: small analytic networks, the teaching network and its
stressed variants, a policy scenario that exercises every policy path, and file helpers.

Network builders return plain dicts in the TOML structure of :mod:`sim.network` (so a test can
mutate them before calling :meth:`sim.Network.from_dict`); ``*_net`` fixtures return validated
:class:`sim.Network` objects.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:      # the package is used from the checkout, not installed
    sys.path.insert(0, str(REPO_ROOT))

import sim  # noqa: E402

#: The default network of ``simulate``; it may still be in progress (see test_engine).
DEFAULT_NETWORK = "rare_earth_2025"

HUGE = 1e12   # "never runs out" stock and capacity


# ---------------------------------------------------------------------------------------------
# Network builders (plain functions; fixtures below hand them to tests)
# ---------------------------------------------------------------------------------------------

# a licensing control on Dy/Tb from April 2025 that a truce suspends (figure and table tests)
CONTROL_TOML = """\
[scenario]
name = "cn-control"
description = "test: CN licensing on Dy/Tb from April 2025, suspended by a truce"

[controls.apr_2025]
exporter = "CN"
elements = ["Dy", "Tb"]
destinations = "all"
start = 2025-04-04
regime = "licensing"
review_days = 30
approval_probability = 0.5

[truce]
suspends = ["apr_2025"]
start = 2025-11-10
duration_days = 365
"""


def _material(price: float = 1.0, elements=("Nd",)) -> dict:
    return {"elements": list(elements), "price_usd_per_t": price}


def ample_mine(material: str = "m", country: str = "AU") -> dict:
    """A mine that never runs out: huge initial stock and capacity, target stock 0 (it never
    needs to produce)."""
    return {"kind": "mine", "country": country,
            "production": {material: {"capacity_t_per_year": HUGE, "target_stock": 0}},
            "stock": {material: {"initial": HUGE}}}


def single_stage_dict(lam_per_day: float, S: float, lead_time, *, order_size=1,
                      unmet: str = "backorder", initial: float | None = None,
                      qualification_days: float = 0.0, policy: dict | None = None) -> dict:
    """One-for-one (base-stock) manufacturer facing Poisson demand, fed by an ample mine.

    Demand: Poisson order arrivals, ``lam_per_day`` tonnes per day in orders of ``order_size``.
    The buyer starts with ``initial`` (default ``S``: the steady-state inventory position).
    """
    return {
        "network": {"name": "single_stage"},
        "materials": {"m": _material()},
        "nodes": {
            "mine": ample_mine(),
            "buyer": {
                "kind": "manufacturer", "country": "US", "sector": "automotive", "unmet": unmet,
                "stock": {"m": {"initial": S if initial is None else initial,
                                "policy": policy or {"type": "base_stock", "S": S}}},
                "demand": {"m": {"process": "poisson", "rate_t_per_year": lam_per_day * 365.0,
                                 "order_size": order_size}},
            },
        },
        "lanes": [{"from": "mine", "to": "buyer", "material": "m", "lead_time": lead_time,
                   "qualification_days": qualification_days}],
    }


def processor_queue_dict(lam_per_day: float, capacity_t_per_year: float, *, batch_days=1.0,
                         order_size=1, target_stock=0.0, S=3.0, lead_time=2.0) -> dict:
    """A capacity-limited processor serving one base-stock buyer with Poisson demand.

    The processor converts ``ore`` (1 t per t of output; a huge initial ore stock, so inputs
    never bind) into ``m`` at ``capacity_t_per_year`` in batches of at most
    ``capacity x batch_days``. With ``target_stock = 0`` it makes to order: a batch starts only
    for queued downstream orders. With unit orders and a unit batch this is an M/D/1 queue.
    """
    return {
        "network": {"name": "processor_queue"},
        "materials": {"ore": _material(), "m": _material(2.0)},
        "nodes": {
            "proc": {"kind": "processor", "country": "MY",
                     "production": {"m": {"capacity_t_per_year": capacity_t_per_year,
                                          "recipe": {"ore": 1.0}, "batch_days": batch_days,
                                          "target_stock": target_stock}},
                     "stock": {"ore": {"initial": HUGE}}},
            "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                      "stock": {"m": {"initial": S, "policy": {"type": "base_stock", "S": S}}},
                      "demand": {"m": {"process": "poisson",
                                       "rate_t_per_year": lam_per_day * 365.0,
                                       "order_size": order_size}}},
        },
        "lanes": [{"from": "proc", "to": "buyer", "material": "m", "lead_time": lead_time}],
    }


def mini_dict() -> dict:
    """A small valid three-stage network (mine -> processor -> manufacturer) for validation
    tests to break one field at a time."""
    return {
        "network": {"name": "mini"},
        "materials": {"ore": _material(1.0), "oxide": _material(5.0)},
        "nodes": {
            "mine": {"kind": "mine", "country": "AU",
                     "production": {"ore": {"capacity_t_per_year": 1000, "target_stock": 10}},
                     "stock": {"ore": {"initial": 10}}},
            "proc": {"kind": "processor", "country": "MY",
                     "production": {"oxide": {"capacity_t_per_year": 100, "recipe": {"ore": 2.0},
                                              "target_stock": 5}},
                     "stock": {"ore": {"initial": 20, "policy": {"type": "sS", "s": 5, "S": 20}}}},
            "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                      "stock": {"oxide": {"initial": 5, "policy": {"type": "base_stock", "S": 5}}},
                      "demand": {"oxide": {"process": "poisson", "rate_t_per_year": 50,
                                           "order_size": 1}}},
        },
        "lanes": [
            {"from": "mine", "to": "proc", "material": "ore",
             "lead_time": {"dist": "uniform", "min": 2, "max": 4}},
            {"from": "proc", "to": "buyer", "material": "oxide", "lead_time": 5},
        ],
    }


def mini_scenario_dict() -> dict:
    """A small valid scenario (one licensing control under a truce) for scenario errors."""
    return {
        "scenario": {"name": "mini", "start": "2025-01-01", "end": "2027-01-01"},
        "controls": {"c1": {"exporter": "CN", "elements": ["Dy"], "start": "2025-04-04",
                            "regime": "licensing", "review_days": 30,
                            "approval_probability": 0.5}},
        "truce": {"suspends": ["c1"], "start": "2025-11-10", "duration_days": 365,
                  "outcomes": {"reinstate": 0.3, "extend": 0.6, "escalate": 0.1}},
    }


def stress_scenario_dict() -> dict:
    """A scenario for the teaching network that exercises every policy path: licensing with
    denials (cancel and requeue), an extraterritorial rule, a ban under a truce with random
    outcome, a quota, tariffs, a fixed and a random outage, a lane closure into a demand node,
    and a demand surge. Shipments are returned, backlogs dropped and orders cancelled."""
    return {
        "scenario": {"name": "stress", "description": "every policy path",
                     "start": "2025-01-01", "end": "2027-01-01",
                     "shortage_after": "2025-03-01"},
        "controls": {
            "heavy": {"exporter": "CN", "elements": ["Dy", "Tb"], "destinations": "all",
                      "start": "2025-03-01", "regime": "licensing",
                      "review_days": {"dist": "triangular", "min": 10, "mode": 20, "max": 40},
                      "approval_probability": 0.5, "on_denial": "cancel", "avoid_days": 30,
                      "extraterritorial": True},
            "light": {"exporter": "CN", "elements": ["Nd", "Pr"], "start": "2025-06-01",
                      "regime": "ban"},
            "auquota": {"exporter": "AU", "elements": ["Nd"], "destinations": ["MY"],
                        "regime": "quota", "quota_t": 150, "quota_period_days": 90,
                        "start": "2025-02-01"},
            "requeue": {"exporter": "MY", "elements": ["Nd"], "destinations": ["JP"],
                        "regime": "licensing", "review_days": 5, "approval_probability": 0.7,
                        "on_denial": "requeue", "start": "2025-04-01"},
        },
        "truce": {"suspends": ["light"], "start": "2025-09-01", "duration_days": 180,
                  "outcomes": {"reinstate": 0.5, "extend": 0.3, "escalate": 0.2},
                  "escalation": {"regime": "ban"}},
        "tariffs": [{"origin": "JP", "destination": "US", "rate": 0.25, "start": "2025-04-01",
                     "end": "2026-01-01"}],
        "outages": [{"node": "sep_my", "start": "2025-05-01", "duration_days": 60},
                    {"node": "mine_cn", "mtbf_days": 200, "mttr_days": 10}],
        "lane_closures": [{"lane": "magnets_jp->defense_us:ndfeb_magnet",
                           "start": "2025-07-01", "duration_days": 30}],
        "demand_surges": [{"sector": "defense", "factor": 2.0, "start": "2025-08-01",
                           "end": "2026-02-01"}],
    }


def stressed_teaching(base: dict) -> dict:
    """The teaching network with shortages: the US car maker loses unmet demand and the magnet
    maker's capacity is cut from 1200 to 500 t/yr (below the 760 t/yr of demand)."""
    d = copy.deepcopy(base)
    d["nodes"]["auto_us"]["unmet"] = "lost"
    d["nodes"]["magnets_jp"]["production"]["ndfeb_magnet"]["capacity_t_per_year"] = 500
    return d


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding ``sim/`` and ``networks/``)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def teaching() -> sim.Network:
    """The shipped teaching network."""
    return sim.load_network("teaching")


@pytest.fixture
def teaching_dict(teaching) -> dict:
    """A fresh, mutable TOML-structure copy of the teaching network."""
    return copy.deepcopy(teaching.to_dict())


@pytest.fixture
def stressed_teaching_dict(teaching_dict) -> dict:
    """The teaching network with lost sales and a capacity cut (see :func:`stressed_teaching`)."""
    return stressed_teaching(teaching_dict)


@pytest.fixture
def stress_scenario_spec() -> dict:
    """A fresh, mutable dict of the all-paths policy scenario (see
    :func:`stress_scenario_dict`)."""
    return stress_scenario_dict()


@pytest.fixture
def stress_scenario() -> sim.Scenario:
    """The all-paths policy scenario for the teaching network."""
    return sim.Scenario.from_dict(stress_scenario_dict())


@pytest.fixture(scope="session")
def single_stage_spec():
    """Builder ``single_stage_spec(lam_per_day, S, lead_time, **kw) -> dict`` (mutable)."""
    return single_stage_dict


@pytest.fixture(scope="session")
def single_stage():
    """Builder ``single_stage(lam_per_day, S, lead_time, **kw) -> Network``."""
    def build(*args, **kwargs) -> sim.Network:
        return sim.Network.from_dict(single_stage_dict(*args, **kwargs))
    return build


@pytest.fixture(scope="session")
def processor_queue_spec():
    """Builder ``processor_queue_spec(lam_per_day, capacity_t_per_year, **kw) -> dict``."""
    return processor_queue_dict


@pytest.fixture(scope="session")
def processor_queue():
    """Builder ``processor_queue(lam_per_day, capacity_t_per_year, **kw) -> Network``."""
    def build(*args, **kwargs) -> sim.Network:
        return sim.Network.from_dict(processor_queue_dict(*args, **kwargs))
    return build


@pytest.fixture
def mini() -> dict:
    """A fresh valid three-node network dict (see :func:`mini_dict`)."""
    return mini_dict()


@pytest.fixture
def mini_scenario() -> dict:
    """A fresh valid scenario dict (see :func:`mini_scenario_dict`)."""
    return mini_scenario_dict()


@pytest.fixture
def write_toml(tmp_path):
    """``write_toml(data_or_text, name="x.toml") -> Path``: write a dict (as TOML) or raw text."""
    import tomli_w

    def write(data, name: str = "network.toml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else tomli_w.dumps(data))
        return path
    return write


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args, **kw) -> CompletedProcess``: ``python -m sim ARGS`` from the repo root."""
    def run(*args, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=timeout, env=env)
    return run
