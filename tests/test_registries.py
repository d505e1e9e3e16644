"""The registries of the extensible vocabularies (node kinds, export-control regimes, KPIs):
each entry is read by validation, the engine, results, labels and figures, so that adding one
is one entry. The tests add an entry at run time and follow it through every reader."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from conftest import mini_dict  # noqa: E402

import sim  # noqa: E402
from sim import kinds, labels, plots  # noqa: E402
from sim.errors import NetworkError  # noqa: E402


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


def test_unknown_kind_names_the_node_and_the_registered_kinds():
    d = mini_dict()
    d["nodes"]["proc"]["kind"] = "smelter"
    with pytest.raises(NetworkError, match=r"node 'proc'.*kind.*'smelter'.*mine, processor"):
        sim.Network.from_dict(d)
