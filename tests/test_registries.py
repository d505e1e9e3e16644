"""The registries of the extensible vocabularies (node kinds, export-control regimes, KPIs):
each entry is read by validation, the engine, results, labels and figures, so that adding one
is one entry. The tests add an entry at run time and follow it through every reader."""

from __future__ import annotations

from dataclasses import fields, replace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import mini_dict  # noqa: E402
from test_policy import CN_LANE, control, day, lane, plain_net, scenario  # noqa: E402

import sim  # noqa: E402
from sim import kinds, kpis, labels, metrics, plots, policy  # noqa: E402
from sim import scenario as scen  # noqa: E402
from sim.errors import NetworkError, ScenarioError  # noqa: E402


# ---------------------------------------------------------------------------------------------
# node kinds
# ---------------------------------------------------------------------------------------------

def test_kind_registry_is_what_validation_labels_and_figures_read():
    net = sim.load_network("teaching")
    assert sim.network.KINDS == tuple(kinds.NODE_KINDS)
    assert set(plots.DEMAND_KINDS) == {k for k, s in kinds.NODE_KINDS.items() if s.demand}
    for nid, n in net.nodes.items():
        spec = kinds.NODE_KINDS[n.kind]
        # the default of confers_origin is the kind's (the teaching file does not set it)
        assert n.confers_origin == spec.confers_origin
        assert bool(n.demand) <= spec.demand
    # a node without a registered short name reads by its kind's label
    d = mini_dict()
    net = sim.Network.from_dict(d)
    assert labels.node_label("proc", net).endswith("refiner (proc)")
    # every column of the map has a label, and each kind's marker is a distinct one
    assert len({s.marker for s in kinds.NODE_KINDS.values()}) == len(kinds.NODE_KINDS)
    assert kinds.tier_label(kinds.OTHER_TIER) == "other"
    assert "defense user" in kinds.tier_label(kinds.NODE_KINDS["defense_user"].tier)


def test_a_kind_added_to_the_registry_is_accepted_everywhere(monkeypatch):
    # a recycler: demand-free, confers origin, drawn as a star between processors and magnets
    monkeypatch.setitem(kinds.NODE_KINDS, "recycler",
                        kinds.NodeKind("recycler", "*", 1, confers_origin=True))
    d = mini_dict()
    d["nodes"]["rec"] = {"kind": "recycler", "country": "JP",
                         "stock": {"ore": {"initial": 1}}}
    net = sim.Network.from_dict(d)
    assert net.nodes["rec"].confers_origin is True
    assert "confers_origin" not in net.to_dict()["nodes"]["rec"]      # it is the default
    assert labels.node_label("rec", net) == "Japanese recycler (rec)"
    fig = plots.network_map(net)
    legend = [t.get_text() for ax in fig.axes for leg in [ax.get_legend()] if leg
              for t in leg.get_texts()]
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    matplotlib.pyplot.close(fig)
    assert "recycler" in legend
    assert "processor /\nrecycler" in ticks      # its column, shared with the processors
    # and it may not face customer demand: its entry says so
    d["nodes"]["rec"]["sector"] = "x"
    d["nodes"]["rec"]["demand"] = {"ore": {"rate_t_per_year": 1}}
    with pytest.raises(NetworkError, match=r"node 'rec'.*demand.*this node is a recycler"):
        sim.Network.from_dict(d)


@pytest.mark.parametrize("kind", ["smelter", ["mine"], {"kind": "mine"}, None])
def test_unknown_kind_names_the_node_and_the_registered_kinds(kind):
    d = mini_dict()
    d["nodes"]["proc"]["kind"] = kind
    with pytest.raises(NetworkError, match=r"node 'proc'.*kind.*unknown kind.*mine, processor"):
        sim.Network.from_dict(d)


# ---------------------------------------------------------------------------------------------
# export-control regimes
# ---------------------------------------------------------------------------------------------

def test_every_regime_has_its_parameters_and_its_decision():
    assert set(policy.DECISIONS) == set(scen.REGIME_TABLE) == set(scen.REGIMES)
    control_fields = {f.name: f.default for f in fields(scen.ExportControl)}
    for name, spec in scen.REGIME_PARAMS.items():
        # each parameter is a field of a control, starting at the registry's default
        assert control_fields[name] == spec.default, name
        assert spec.doc
    for regime in scen.REGIME_TABLE.values():
        assert set(regime.required) <= set(regime.params) <= set(scen.REGIME_PARAMS)
        # what a regime cannot do without has no default to fall back on
        assert all(scen.REGIME_PARAMS[p].default is None for p in regime.required)


@pytest.mark.parametrize("ctrl", [
    control(regime="quota"),
    control(regime="quota", quota_t=0),
    control(regime="ban", changes=[{"from": day(5), "regime": "quota"}]),
    control(regime="ban", changes=[{"from": day(5), "buyers": ["us_mag"], "regime": "quota"}]),
    control(regime="licensing", review_days=3,
            changes=[{"from": day(5), "regime": "quota", "quota_period_days": 30}]),
])
def test_a_quota_without_tonnes_is_an_error_naming_quota_t(ctrl):
    # the default used to be 0 t, which lets one shipment through per period
    with pytest.raises(ScenarioError, match=r"controls\.c.*quota_t") as exc:
        scenario(controls={"c": ctrl})
    assert str(exc.value).count("\n") == 0


def test_escalation_checks_the_regime_it_leaves_with_the_same_rules():
    base = {"controls": {"c": control(regime="licensing", review_days=3)}}
    truce = {"suspends": ["c"], "start": day(1), "duration_days": 10,
             "outcomes": {"escalate": 1.0}}
    with pytest.raises(ScenarioError, match=r"truce\.escalation.*escalating control 'c'.*quota_t"):
        scenario(**base, truce={**truce, "escalation": {"regime": "quota"}})
    with pytest.raises(ScenarioError, match=r"truce\.escalation.*quota_period_days"):
        scenario(**base, truce={**truce, "escalation": {"regime": "quota", "quota_t": 5,
                                                        "quota_period_days": 0}})
    s = scenario(**base, truce={**truce, "escalation": {"regime": "quota", "quota_t": 5}})
    assert s.truce.escalation == {"regime": "quota", "quota_t": 5.0}
    # a quota given before (here by a dated change for everyone) is in force at the escalation
    base["controls"]["c"]["changes"] = [{"from": day(3), "quota_t": 7}]
    scenario(**base, truce={**truce, "escalation": {"regime": "quota"}})


def test_a_control_built_in_python_with_an_unknown_regime_is_an_error():
    s = scenario(controls={"c": control(regime="ban")})
    c = s.controls[0]
    bad = s.with_changes(controls=(replace(c, regime="embargo"),))
    with pytest.raises(ScenarioError, match=r"controls\.c.*regime.*unknown regime 'embargo'"):
        sim.simulate(plain_net(), bad, seed=1, horizon_days=20)


def test_a_regime_added_to_the_registry_is_parsed_and_decides_shipments(monkeypatch):
    """A 'monitoring' regime: every covered shipment is counted and passes at once."""
    seen = []

    def decide_monitoring(pol, step, p, acc, lane, qty, prov, now, shipped_at, cleared):
        seen.append((now, qty, step.cid, p["regime"]))
        return False

    monkeypatch.setitem(scen.REGIME_TABLE, "monitoring",
                        scen.Regime("covered shipments are counted and pass", ("de_minimis",)))
    monkeypatch.setitem(policy.DECISIONS, "monitoring", decide_monitoring)
    L = 10.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"m": control(
        start=30, regime="monitoring")}), seed=1, horizon_days=200)
    log = lane(run, CN_LANE).log
    np.testing.assert_allclose(log[:, 2] - log[:, 0], L)     # nothing waited
    after = log[log[:, 0] >= 30]
    assert len(seen) == len(after) > 0
    np.testing.assert_allclose([q for _t, q, _c, _r in seen], after[:, 1])
    assert {(c, r) for _t, _q, c, r in seen} == {("m", "monitoring")}
    # and it is an unknown regime without its entry; so is a value that names none
    for bad in (["ban"], {"name": "ban"}, 3):
        with pytest.raises(ScenarioError, match=r"controls\.m.*regime.*unknown regime"):
            scenario(controls={"m": control(regime=bad)})
    # and it is an unknown regime without its entry
    monkeypatch.delitem(scen.REGIME_TABLE, "monitoring")
    with pytest.raises(ScenarioError, match=r"controls\.m.*regime.*unknown regime 'monitoring'"):
        scenario(controls={"m": control(regime="monitoring")})


# ---------------------------------------------------------------------------------------------
# KPIs
# ---------------------------------------------------------------------------------------------

def test_kpi_registry_is_what_results_labels_and_figures_read(teaching):
    run = sim.simulate(teaching, seed=3, horizon_days=200)
    rows = run.kpi_rows()
    names = list(dict.fromkeys(k for k, _s, _v in rows))
    # every KPI a run computes is in the registry; demand and policy KPIs in its order (the
    # reserve KPIs come only with a strategic reserve, the derived and resilience KPIs from
    # the experiments)
    assert set(names) == {n for n, k in kpis.KPI_TABLE.items()
                          if k.family not in ("derived", "reserve", "resilience")}
    for family in ("demand", "policy"):
        assert [n for n in names if kpis.KPI_TABLE[n].family == family] == \
            list(kpis.kpi_names(family))
    assert metrics.KPI_NAMES == kpis.kpi_names("demand")
    for name, k in kpis.KPI_TABLE.items():
        assert labels.kpi_name(name) == k.label
        assert (name in labels.PERCENT) == (k.unit == "%")
        assert k.direction in (-1, 0, 1)
        assert (k.stream is not None) == (k.group is not None) == (k.family == "demand")
        assert (k.run is not None) == (k.family == "policy")
    assert labels.CATEGORIES["truce_outcome"] == kpis.KPI_TABLE["truce_outcome"].categories
    # directions that the figures' colours follow
    assert kpis.KPI_TABLE["fill_rate"].direction == 1
    assert kpis.KPI_TABLE["shortage_occurred"].direction == -1
    assert kpis.KPI_TABLE["first_shortage_day"].direction == 1


def test_a_kpi_added_to_the_registry_is_computed_for_every_scope(monkeypatch, teaching):
    """'orders filled completely' (a count): one entry, computed per stream and per group from
    the bases, named by the labels, in the run's KPI table."""
    monkeypatch.setitem(kpis.KPI_TABLE, "full_orders", kpis.KPI(
        "orders filled completely", "count", 1, "demand",
        stream=lambda b: [float(n - k) for n, k in zip(b.orders, b.n_short)],
        group=lambda g: g.sum("full_orders")))
    run = sim.simulate(teaching, seed=3, horizon_days=200)
    rows = run.kpi_rows()
    scopes = {s for k, s, _v in rows if k == "fill_rate"}
    assert scopes == {s for k, s, _v in rows if k == "full_orders"}
    for scope in scopes:
        orders = run.kpi("orders", scope)
        assert run.kpi("full_orders", scope) == pytest.approx(
            orders * run.kpi("order_fill_rate", scope), abs=1e-6)
    assert run.kpi("full_orders", "network") > 0
    assert labels.kpi_label("full_orders|network") == "Orders filled completely, all users (count)"
    df = run.kpis()
    assert set(df[df["kpi"] == "full_orders"]["scope"]) == scopes
