"""Input validation: every invalid network or scenario raises :class:`sim.ModelError` (a
``ValueError``) whose one-line message names the file (when loaded from one), the node, lane or
table, the field, and what is wrong.

Each case starts from a small valid definition (``mini`` / ``mini_scenario`` fixtures), breaks
one thing, writes it to a TOML file in ``tmp_path`` and loads it with the public loaders.
"""

from __future__ import annotations

import re

import pytest

import sim


def _set(d: dict, path: str, value) -> None:
    """Set ``d[a][b]...[z] = value`` for a dotted *path* (integers index lists)."""
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value


def _delete(d: dict, path: str) -> None:
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        d = d[k]
    del d[keys[-1]]


def test_fixtures_are_valid(mini, mini_scenario, write_toml):
    """The starting points load cleanly, so every failure below is caused by the one edit."""
    net = sim.load_network(write_toml(mini))
    assert sorted(net.nodes) == ["buyer", "mine", "proc"]
    sc = sim.load_scenario(write_toml(mini_scenario, "scenario.toml"))
    assert sc.truce is not None
    sc.check_network(net)
    assert issubclass(sim.ModelError, ValueError)
    assert issubclass(sim.NetworkError, sim.ModelError)
    assert issubclass(sim.ScenarioError, sim.ModelError)


# (id, edit, [fragments the message must contain, in order of "where, field, what"])
NETWORK_CASES = [
    ("unknown_kind", lambda d: _set(d, "nodes.mine.kind", "quarry"),
     ["node 'mine'", "kind", "unknown kind 'quarry'", "processor"]),
    ("unknown_material_in_stock",
     lambda d: _set(d, "nodes.buyer.stock.unobtainium", {"initial": 1}),
     ["node 'buyer'", "unobtainium", "unknown material"]),
    ("unknown_material_in_demand",
     lambda d: _set(d, "nodes.buyer.demand.unobtainium",
                    {"process": "poisson", "rate_t_per_year": 5}),
     ["node 'buyer'", "unobtainium", "unknown material"]),
    ("unknown_material_in_production",
     lambda d: _set(d, "nodes.mine.production.unobtainium", {"capacity_t_per_year": 5}),
     ["node 'mine'", "unobtainium", "unknown material"]),
    ("unknown_material_on_lane", lambda d: _set(d, "lanes.1.material", "unobtainium"),
     ["lane proc->buyer:unobtainium", "material", "unknown material 'unobtainium'"]),
    ("missing_capacity", lambda d: _delete(d, "nodes.mine.production.ore.capacity_t_per_year"),
     ["node 'mine'", "production.ore.capacity_t_per_year", "missing capacity"]),
    ("negative_capacity",
     lambda d: _set(d, "nodes.mine.production.ore.capacity_t_per_year", -5),
     ["node 'mine'", "production.ore.capacity_t_per_year", ">= 0", "-5"]),
    ("negative_scheduled_capacity",
     lambda d: _set(d, "nodes.proc.production.oxide.capacity_schedule",
                    [{"from": "2026-01-01", "t_per_year": -1}]),
     ["node 'proc'", "capacity_schedule[0].t_per_year", ">= 0"]),
    ("lane_to_missing_node", lambda d: _set(d, "lanes.1.to", "ghost"),
     ["lane proc->ghost:oxide", "to", "'ghost' does not exist"]),
    ("lane_from_missing_node", lambda d: _set(d, "lanes.0.from", "ghost"),
     ["lane ghost->proc:ore", "from", "'ghost' does not exist"]),
    ("recipe_undeclared_material",
     lambda d: _set(d, "nodes.proc.production.oxide.recipe", {"slag": 1.0}),
     ["node 'proc'", "production.oxide.recipe", "undeclared material 'slag'"]),
    ("demand_without_supplier_path",
     lambda d: (_set(d, "lanes", d["lanes"][:1]), _set(d, "nodes.buyer.stock.oxide.initial", 0)),
     ["node 'buyer'", "demand.oxide", "no supplier path"]),
    ("shares_not_summing_to_one", lambda d: _set(d, "lanes.1.share", 0.6),
     ["node 'buyer'", "share", "sum to 0.6, not 1"]),
    ("bad_country_code", lambda d: _set(d, "nodes.buyer.country", "XX"),
     ["node 'buyer'", "country", "ISO 3166-1", "'XX'"]),
    ("lowercase_country_code", lambda d: _set(d, "nodes.buyer.country", "us"),
     ["node 'buyer'", "country", "'us'"]),
    ("sS_with_s_equal_S",
     lambda d: _set(d, "nodes.proc.stock.ore.policy", {"type": "sS", "s": 20, "S": 20}),
     ["node 'proc'", "stock.ore.policy", "s < S"]),
    ("sS_with_s_above_S",
     lambda d: _set(d, "nodes.proc.stock.ore.policy", {"type": "sS", "s": 30, "S": 20}),
     ["node 'proc'", "stock.ore.policy", "s < S", "s=30"]),
    ("unknown_distribution",
     lambda d: _set(d, "lanes.0.lead_time", {"dist": "weibull", "mean": 3}),
     ["lane mine->proc:ore", "lead_time", "unknown dist 'weibull'"]),
    ("negative_lead_time_parameter",
     lambda d: _set(d, "lanes.0.lead_time", {"dist": "uniform", "min": -1, "max": 3}),
     ["lane mine->proc:ore", "lead_time", "'min'", ">= 0", "-1"]),
    ("negative_fixed_lead_time", lambda d: _set(d, "lanes.1.lead_time", -2),
     ["lane proc->buyer:oxide", "lead_time", ">= 0", "-2"]),
    ("negative_lognormal_sd",
     lambda d: _set(d, "lanes.1.lead_time", {"dist": "lognormal", "mean": 5, "sd": -1}),
     ["lane proc->buyer:oxide", "lead_time", "'sd'", ">= 0"]),
    ("triangular_mode_outside",
     lambda d: _set(d, "lanes.0.lead_time", {"dist": "triangular", "min": 2, "mode": 9, "max": 5}),
     ["lane mine->proc:ore", "lead_time", "min <= mode <= max"]),
    ("unknown_policy_type",
     lambda d: _set(d, "nodes.proc.stock.ore.policy", {"type": "kanban"}),
     ["node 'proc'", "policy.type", "unknown policy type 'kanban'"]),
    ("inbound_lane_without_policy", lambda d: _delete(d, "nodes.proc.stock.ore.policy"),
     ["node 'proc'", "stock.ore.policy", "no ordering policy"]),
    ("unknown_node_field", lambda d: _set(d, "nodes.mine.capacity", 5),
     ["node 'mine'", "unknown field", "capacity"]),
    ("mine_with_recipe",
     lambda d: _set(d, "nodes.mine.production.ore.recipe", {"oxide": 1.0}),
     ["node 'mine'", "production.ore.recipe", "mine"]),
    ("demand_at_processor",
     lambda d: _set(d, "nodes.proc.demand", {"ore": {"process": "poisson",
                                                     "rate_t_per_year": 5}}),
     ["node 'proc'", "demand", "processor"]),
    ("demand_node_without_sector", lambda d: _delete(d, "nodes.buyer.sector"),
     ["node 'buyer'", "sector"]),
    ("unknown_demand_process",
     lambda d: _set(d, "nodes.buyer.demand.oxide.process", "bursty"),
     ["node 'buyer'", "demand.oxide.process", "unknown process 'bursty'"]),
    ("negative_initial_stock", lambda d: _set(d, "nodes.mine.stock.ore.initial", -1),
     ["node 'mine'", "stock.ore.initial", ">= 0"]),
    ("unknown_element", lambda d: _set(d, "materials.ore.elements", ["Nd", "Xx"]),
     ["material 'ore'", "elements", "Xx"]),
    ("negative_priority", lambda d: _set(d, "nodes.buyer.priority", -1),
     ["node 'buyer'", "priority", "non-negative integer"]),
    ("lane_from_node_without_material", lambda d: _set(d, "lanes.1.from", "mine"),
     ["lane mine->buyer:oxide", "from", "neither produces nor stocks"]),
]


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in NETWORK_CASES],
                         ids=[c[0] for c in NETWORK_CASES])
def test_network_error_names_file_place_field_and_problem(edit, fragments, mini, write_toml):
    """Loading a network file with one error raises ModelError whose message starts with the
    file path and then names the node or lane, the field and what is wrong, on one line."""
    edit(mini)
    path = write_toml(mini)
    with pytest.raises(sim.ModelError) as info:
        sim.load_network(path)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith(f"{path}: "), msg
    assert info.value.file == str(path)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    assert "\n" not in msg


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in NETWORK_CASES[:8]],
                         ids=[c[0] for c in NETWORK_CASES[:8]])
def test_network_error_from_dict_has_no_file(edit, fragments, mini):
    """Networks built in Python (``Network.from_dict``) report the same place and problem,
    without a file part."""
    edit(mini)
    with pytest.raises(sim.ModelError) as info:
        sim.Network.from_dict(mini)
    assert info.value.file is None
    for frag in fragments:
        assert frag in str(info.value)


def test_malformed_toml_names_file_and_position(write_toml):
    """A TOML syntax error raises ModelError naming the file, 'malformed TOML' and the line."""
    path = write_toml('[network]\nname = "x"\n[nodes.mine\nkind = "mine"\n')
    with pytest.raises(sim.ModelError, match=re.escape(str(path)) + r": malformed TOML: .*line 3"):
        sim.load_network(path)


def test_missing_file_and_unknown_network():
    """A missing file and an unknown shipped name raise ModelError saying what was looked for
    (the unknown name lists the shipped networks)."""
    with pytest.raises(sim.ModelError, match=r"file not found: .*nowhere\.toml"):
        sim.load_network("/nonexistent/nowhere.toml")
    with pytest.raises(sim.ModelError, match=r"unknown network 'no_such_net'.*teaching"):
        sim.load_network("no_such_net")


def test_bad_horizon_and_start_are_model_errors(teaching):
    """Run parameters out of range are ModelErrors naming the parameter."""
    with pytest.raises(sim.ModelError, match="horizon_days: must be a positive number"):
        sim.simulate(teaching, horizon_days=0)
    with pytest.raises(sim.ModelError, match="start: must be a date YYYY-MM-DD"):
        sim.simulate(teaching, start="2025-02-30", horizon_days=5)


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------

SCENARIO_CASES = [
    ("unknown_regime", lambda d: _set(d, "controls.c1.regime", "embargo"),
     ["controls.c1", "regime", "unknown regime 'embargo'"]),
    ("truce_suspends_unknown_control", lambda d: _set(d, "truce.suspends", ["c1", "c9"]),
     ["truce", "suspends", "unknown control 'c9'"]),
    ("outcomes_not_summing_to_one", lambda d: _set(d, "truce.outcomes.escalate", 0.2),
     ["truce.outcomes", "sum to 1", "1.1"]),
    ("outcomes_summing_below_one", lambda d: _set(d, "truce.outcomes.extend", 0.5),
     ["truce.outcomes", "sum to 1", "0.9"]),
    ("bad_control_date", lambda d: _set(d, "controls.c1.start", "2025-13-01"),
     ["controls.c1", "start", "YYYY-MM-DD", "2025-13-01"]),
    ("bad_scenario_date", lambda d: _set(d, "scenario.start", "soon"),
     ["[scenario]", "start", "YYYY-MM-DD", "soon"]),
    ("end_before_start", lambda d: _set(d, "scenario.end", "2024-01-01"),
     ["[scenario]", "end", "must be after start"]),
    ("approval_probability_above_one",
     lambda d: _set(d, "controls.c1.approval_probability", 1.5),
     ["controls.c1", "approval_probability", "[0, 1]", "1.5"]),
    ("negative_approval_probability",
     lambda d: _set(d, "controls.c1.approval_probability", -0.1),
     ["controls.c1", "approval_probability", "[0, 1]"]),
    ("licensing_without_review_days", lambda d: _delete(d, "controls.c1.review_days"),
     ["controls.c1", "review_days", "licensing needs"]),
    ("bad_exporter", lambda d: _set(d, "controls.c1.exporter", "China"),
     ["controls.c1", "exporter", "ISO 3166-1", "'China'"]),
    ("unknown_element", lambda d: _set(d, "controls.c1.elements", ["Dy", "Zz"]),
     ["controls.c1", "elements", "Zz"]),
    ("negative_review_days",
     lambda d: _set(d, "controls.c1.review_days", {"dist": "uniform", "min": -5, "max": 5}),
     ["controls.c1", "review_days", "'min'", ">= 0"]),
    ("unknown_top_level_table", lambda d: _set(d, "embargoes", {}),
     ["top level", "unknown field", "embargoes"]),
    ("bad_tariff_rate",
     lambda d: _set(d, "tariffs", [{"origin": "CN", "rate": -0.1, "start": "2025-01-01"}]),
     ["tariffs[0]", "rate", "-0.1"]),
    ("bad_closure_queued_orders",
     lambda d: _set(d, "lane_closures", [{"lane": "a->b:m", "start": "2025-02-01",
                                          "duration_days": 5, "queued_orders": "hold"}]),
     ["lane_closures[0]", "queued_orders", "'reroute'", "'keep'", "'hold'"]),
]


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in SCENARIO_CASES],
                         ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_error_from_dict(edit, fragments, mini_scenario):
    """``Scenario.from_dict`` raises ScenarioError (a ModelError) naming the table, the field
    and what is wrong."""
    edit(mini_scenario)
    with pytest.raises(sim.ModelError) as info:
        sim.Scenario.from_dict(mini_scenario)
    assert isinstance(info.value, sim.ScenarioError)
    for frag in fragments:
        assert frag in str(info.value), f"{frag!r} not in {str(info.value)!r}"


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in SCENARIO_CASES],
                         ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_error_from_file_names_file(edit, fragments, mini_scenario, write_toml):
    """``load_scenario(path)`` raises the same error prefixed with the file path."""
    edit(mini_scenario)
    path = write_toml(mini_scenario, "scenario.toml")
    with pytest.raises(sim.ModelError, match="^" + re.escape(f"{path}: ")) as info:
        sim.load_scenario(path)
    for frag in fragments:
        assert frag in str(info.value)
    assert info.value.file == str(path)


def test_scenario_toml_dates_and_malformed_file(mini_scenario, write_toml):
    """Native TOML dates are accepted; a malformed scenario file is a ModelError naming it."""
    text = ('[scenario]\nname = "dates"\nstart = 2025-01-01\nend = 2026-01-01\n'
            '[[lane_closures]]\nlane = "a->b:m"\nstart = 2025-03-01\nduration_days = 10\n')
    sc = sim.load_scenario(write_toml(text, "dates.toml"))
    assert sc.lane_closures[0].start.isoformat() == "2025-03-01"
    bad = write_toml('[scenario\nname = "x"\n', "bad.toml")
    with pytest.raises(sim.ModelError, match=re.escape(str(bad)) + ": malformed TOML"):
        sim.load_scenario(bad)


def test_scenario_referencing_missing_network_parts(teaching, write_toml):
    """``check_network`` (run by ``simulate``) rejects a scenario naming a node, lane or
    material the network does not have, naming the scenario file, table and field."""
    cases = [
        ({"outages": [{"node": "atlantis", "start": "2025-02-01", "duration_days": 5}]},
         ["outages", "node", "'atlantis'", "teaching"]),
        ({"lane_closures": [{"lane": "a->b:m", "start": "2025-02-01", "duration_days": 5}]},
         ["lane_closures", "lane", "'a->b:m'"]),
        ({"demand_surges": [{"sector": "defense", "material": "unobtainium", "factor": 2,
                             "start": "2025-02-01", "end": "2025-03-01"}]},
         ["demand_surges", "material", "'unobtainium'"]),
    ]
    for i, (body, fragments) in enumerate(cases):
        path = write_toml({"scenario": {"name": f"s{i}"}, **body}, f"s{i}.toml")
        sc = sim.load_scenario(path)
        with pytest.raises(sim.ScenarioError) as info:
            sim.simulate(teaching, sc, horizon_days=10)
        msg = str(info.value)
        assert msg.startswith(str(path)), msg
        for frag in fragments:
            assert frag in msg, f"{frag!r} not in {msg!r}"


def test_unknown_scenario_name():
    """An unknown built-in scenario name is a ModelError listing the built-in names."""
    with pytest.raises(sim.ModelError, match=r"unknown scenario 'no-such-scenario'"):
        sim.load_scenario("no-such-scenario")
