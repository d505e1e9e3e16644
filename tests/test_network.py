"""The network stage (sim/network.py): TOML and graph round trips of the shipped networks,
what the digest covers, the lane shares of the shipped data, the graph a network builds,
validation messages for inputs that tests/test_validation.py does not break, and the listing
of shipped networks."""

from __future__ import annotations

import copy

import networkx as nx
import pytest

import sim
from sim.network import Network, list_networks, load_network, save_network

SHIPPED = ["rare_earth_2025", "teaching"]


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request) -> Network:
    return load_network(request.param)


def test_list_networks_lists_the_shipped_files():
    names = list_networks()
    assert names == sorted(names)
    assert set(SHIPPED) <= set(names)
    for name in names:
        assert load_network(name).file.endswith(f"{name}.toml")


def test_toml_round_trip_keeps_digest_and_dict(shipped, tmp_path):
    path = save_network(shipped, tmp_path / "copy.toml")
    assert path == tmp_path / "copy.toml" and not (tmp_path / "copy.toml.tmp").exists()
    back = load_network(path)
    assert back.to_dict() == shipped.to_dict()
    assert back.digest() == shipped.digest()
    # and a second trip changes nothing either
    again = load_network(save_network(back, tmp_path / "again.toml"))
    assert again.to_dict() == shipped.to_dict()


def test_copy_is_equal_and_independent(shipped):
    dup = shipped.copy()
    assert dup.digest() == shipped.digest() and dup is not shipped
    assert dup.nodes is not shipped.nodes and dup.lanes is not shipped.lanes
    dup.lanes.pop()
    assert len(shipped.lanes) == len(dup.lanes) + 1


def _toml_graph(data: dict) -> nx.MultiDiGraph:
    """A graph made in Python from a network's TOML structure, as from_graph documents it."""
    g = nx.MultiDiGraph(name=data["network"]["name"],
                        description=data["network"].get("description", ""),
                        materials=copy.deepcopy(data["materials"]))
    for nid, attrs in data["nodes"].items():
        g.add_node(nid, **copy.deepcopy(attrs))
    for lane in data["lanes"]:
        attrs = {k: copy.deepcopy(v) for k, v in lane.items() if k not in ("from", "to")}
        g.add_edge(lane["from"], lane["to"], key=lane["material"], **attrs)
    return g


def test_from_graph_round_trip(shipped):
    data = shipped.to_dict()
    back = Network.from_graph(_toml_graph(data))
    got = back.to_dict()
    # from_graph takes name and description from the graph; the rest of [network] and the
    # [sources] table are file-level and not part of a graph
    assert got["network"]["name"] == shipped.name
    for key in ("materials", "nodes"):
        assert got[key] == data[key], key
    # the lanes come back in the graph's edge order (grouped by source node)
    by_id = lambda lanes: {(l["from"], l["to"], l["material"]): l for l in lanes}  # noqa: E731
    assert by_id(got["lanes"]) == by_id(data["lanes"])
    assert len(got["lanes"]) == len(data["lanes"])
    # load_network accepts the graph too
    assert load_network(_toml_graph(data)).to_dict() == got


def test_plain_digraph_is_accepted(mini):
    g = nx.DiGraph(name="mini-graph", materials=mini["materials"])
    for nid, attrs in mini["nodes"].items():
        g.add_node(nid, **attrs)
    for lane in mini["lanes"]:
        g.add_edge(lane["from"], lane["to"], **{k: v for k, v in lane.items()
                                                if k not in ("from", "to")})
    net = Network.from_graph(g)
    assert net.name == "mini-graph"
    want = Network.from_dict(mini).to_dict()
    assert net.to_dict()["nodes"] == want["nodes"] and net.to_dict()["lanes"] == want["lanes"]
    assert net.digest() != Network.from_dict(mini).digest()      # the name differs


def test_built_graph_has_one_edge_per_lane_keyed_by_material(shipped):
    g = shipped.graph
    assert isinstance(g, nx.MultiDiGraph)
    assert set(g.nodes) == set(shipped.nodes)
    assert g.number_of_edges() == len(shipped.lanes)
    for lane in shipped.lanes:
        attrs = g.edges[lane.src, lane.dst, lane.material]
        assert attrs["spec"] is lane and attrs["share"] == lane.share
        assert attrs["lane_id"] == lane.id == f"{lane.src}->{lane.dst}:{lane.material}"
    for nid, spec in shipped.nodes.items():
        assert g.nodes[nid]["kind"] == spec.kind and g.nodes[nid]["country"] == spec.country


def test_shipped_shares_per_buyer_and_material_sum_to_one(shipped):
    totals: dict[tuple[str, str], float] = {}
    for lane in shipped.lanes:
        assert 0.0 <= lane.share <= 1.0, lane.id
        totals[lane.dst, lane.material] = totals.get((lane.dst, lane.material), 0.0) + lane.share
    assert totals
    for key, total in totals.items():
        assert total == pytest.approx(1.0, abs=1e-6), key


def test_digest_follows_content(mini, write_toml):
    base = Network.from_dict(mini).digest()
    assert len(base) == 64 and int(base, 16) >= 0

    def digest_after(edit) -> str:
        d = copy.deepcopy(mini)
        edit(d)
        return Network.from_dict(d).digest()

    # numbers change it
    assert digest_after(lambda d: d["nodes"]["mine"]["production"]["ore"].update(
        capacity_t_per_year=1001)) != base
    assert digest_after(lambda d: d["lanes"][1].update(capacity_t_per_year=40.0)) != base
    # source texts and notes are content too (a citable network carries them)
    assert digest_after(lambda d: d["nodes"]["mine"].update(source="USGS MCS 2025")) != base
    assert digest_after(lambda d: d["lanes"][0].update(note="by sea")) != base
    # explicit defaults and key order are not
    assert digest_after(lambda d: d["nodes"]["buyer"].update(unmet="backorder",
                                                             holding_cost_rate=0.2)) == base
    assert digest_after(lambda d: d.update(nodes=dict(reversed(list(d["nodes"].items()))))) == base
    # TOML comments are not part of the network
    plain = write_toml(mini, "plain.toml")
    commented = write_toml("# a comment\n" + plain.read_text().replace(
        "\n", "  # trailing comment\n", 1), "commented.toml")
    assert load_network(plain).digest() == load_network(commented).digest() == base


# Inputs that tests/test_validation.py does not break: each message names the node or lane,
# the field and what is wrong.
BAD = [
    ("unmet", lambda d: d["nodes"]["buyer"].update(unmet="queue"),
     ["node 'buyer'", "unmet", "'backorder' or 'lost'", "'queue'"]),
    ("order_split", lambda d: d["nodes"]["buyer"].update(order_split="random"),
     ["node 'buyer'", "order_split", "'random'"]),
    ("confers_origin", lambda d: d["nodes"]["proc"].update(confers_origin="yes"),
     ["node 'proc'", "confers_origin", "true or false", "'yes'"]),
    ("partial_shipments", lambda d: d["nodes"]["buyer"].update(partial_shipments=1),
     ["node 'buyer'", "partial_shipments", "true or false"]),
    ("duplicate_lane", lambda d: d["lanes"].append(copy.deepcopy(d["lanes"][1])),
     ["lane proc->buyer:oxide", "duplicate lane"]),
    ("self_lane", lambda d: d["lanes"].append({"from": "proc", "to": "proc", "material": "ore",
                                               "lead_time": 1}),
     ["lane proc->proc:ore", "itself"]),
    ("recipe_eats_output",
     lambda d: d["nodes"]["proc"]["production"]["oxide"].update(recipe={"oxide": 1.0}),
     ["node 'proc'", "production.oxide.recipe", "its own output"]),
    ("lane_from_demand_node", lambda d: d["lanes"].append(
        {"from": "buyer", "to": "proc", "material": "oxide", "lead_time": 1}),
     ["lane buyer->proc:oxide", "from", "'buyer' consumes 'oxide' as customer demand"]),
    ("lane_into_producer", lambda d: d["lanes"].append(
        {"from": "proc", "to": "mine", "material": "ore", "lead_time": 1}),
     ["lane proc->mine:ore", "to", "'mine' produces 'ore' itself"]),
    ("zero_lane_capacity", lambda d: d["lanes"][0].update(capacity_t_per_year=0),
     ["lane mine->proc:ore", "capacity_t_per_year", "> 0", "got 0"]),
    ("lane_missing_material", lambda d: d["lanes"][0].pop("material"),
     ["lane #1", "material", "missing or not a string"]),
    ("lane_missing_lead_time", lambda d: d["lanes"][1].pop("lead_time"),
     ["lane proc->buyer:oxide", "lead_time", "missing"]),
    ("no_nodes", lambda d: d.update(nodes={}, lanes=[]), ["no nodes"]),
]


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_network_names_place_and_field(mini, edit, fragments, write_toml):
    edit(mini)
    with pytest.raises(sim.ModelError) as info:
        Network.from_dict(mini)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    # from a file, the message starts with the file's path
    path = write_toml(mini)
    with pytest.raises(sim.ModelError) as info:
        load_network(path)
    assert str(info.value).startswith(f"{path}: ")
