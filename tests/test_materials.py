"""Element content of materials: the schema, its validation, and which materials a control
written on elements reaches (exactly those whose content includes one of its elements)."""

from __future__ import annotations

import math
import pickle

import pytest

import sim
from sim.materials import Material
from conftest import ample_mine

STANDARD = {"Nd": 0.225, "Pr": 0.075, "Dy": 0.009}     # standard-grade NdFeB (DOMAIN.md F2)


def _two_magnet_net() -> dict:
    """A Chinese maker ships a standard-grade magnet (0.9% Dy) and a Dy-free magnet to a US
    buyer; both are given by content."""
    mine = ample_mine("std", country="CN")
    mine["production"]["plain"] = {"capacity_t_per_year": 1e12, "target_stock": 0}
    mine["stock"]["plain"] = {"initial": 1e12}
    return {
        "network": {"name": "two_magnets"},
        "materials": {
            "std": {"content": STANDARD, "content_source": "test", "price_usd_per_t": 1.0},
            "plain": {"content": {"Nd": 0.23, "Pr": 0.077, "Dy": 0.0}, "price_usd_per_t": 1.0},
        },
        "nodes": {
            "maker": mine,
            "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                      "stock": {m: {"initial": 5, "policy": {"type": "base_stock", "S": 5}}
                                for m in ("std", "plain")},
                      "demand": {m: {"process": "poisson", "rate_t_per_year": 50}
                                 for m in ("std", "plain")}},
        },
        "lanes": [{"from": "maker", "to": "buyer", "material": m, "lead_time": 3}
                  for m in ("std", "plain")],
    }


def _ban(elements) -> dict:
    return {"scenario": {"name": "ban", "start": "2025-01-01", "end": "2026-01-01"},
            "controls": {"c": {"exporter": "CN", "elements": list(elements),
                               "start": "2025-03-01", "regime": "ban"}}}


def test_content_gives_elements_above_zero():
    """The elements of a material given by content are those with a fraction above zero."""
    m = Material("x", frozenset(), content={"Nd": 0.2, "Pr": 0.07, "Dy": 0.009, "Tb": 0.0})
    assert m.elements == frozenset({"Nd", "Pr", "Dy"})
    assert math.isclose(m.content_of(["Dy", "Tb"]), 0.009)
    assert m.content_of(["Sm"]) == 0.0
    assert m.contains_any({"Dy"}) and not m.contains_any({"Tb", "Sm"})
    with pytest.raises(TypeError):
        m.content["Nd"] = 0.5        # read-only
    again = pickle.loads(pickle.dumps(m))   # worker processes receive networks by pickle
    assert again == m and dict(again.content) == dict(m.content)
    with pytest.raises(TypeError):
        again.content.update(Nd=0.5)
    unknown = Material("y", frozenset({"Nd"}))
    assert unknown.content is None and unknown.content_of(["Nd"]) is None


def test_default_network_standard_grade_carries_dy():
    """The default network gives standard-grade NdFeB 0.6-1.2% Dy (DOMAIN.md F2), so a Dy/Tb
    control reaches it; every content table is valid and sourced."""
    net = sim.load_network("rare_earth_2025")
    std = net.materials["ndfeb_magnet"]
    assert 0.006 <= std.content["Dy"] <= 0.012
    assert std.contains_any({"Dy", "Tb"})
    for m in net.materials.values():
        if m.content is not None:
            assert m.content_source, m.id
            assert sum(m.content.values()) <= 1.0
    assert not net.materials["ndpr_oxide"].contains_any({"Dy", "Tb"})


def test_content_round_trips(write_toml):
    """to_dict writes the content and its source; loading it back gives the same network."""
    net = sim.Network.from_dict(_two_magnet_net())
    again = sim.load_network(write_toml(net.to_dict()))
    assert dict(again.materials["std"].content) == STANDARD
    assert again.materials["std"].content_source == "test"
    assert again.digest() == net.digest()


def test_control_reaches_material_exactly_when_content_falls_under_it(write_toml):
    """A ban on Dy stops the standard grade (0.9% Dy) and not the Dy-free magnet; a ban on
    Tb, which neither contains, stops nothing."""
    net = sim.Network.from_dict(_two_magnet_net())
    ban_day = 59.0                                  # 2025-03-01
    shipped = {}
    for elements in (["Dy"], ["Tb"]):
        sc = sim.load_scenario(write_toml(_ban(elements), "ban.toml"))
        run = sim.simulate(net, sc, seed=3)
        for lane in run.lanes:
            late = lane.log[:, 0] > ban_day
            shipped[(elements[0], lane.material)] = float(lane.log[late, 1].sum())
    assert shipped[("Dy", "std")] == 0.0
    assert shipped[("Dy", "plain")] > 20.0          # ~50 t/yr for ten months
    assert shipped[("Tb", "std")] > 20.0 and shipped[("Tb", "plain")] > 20.0


BAD_CONTENT = [
    ("above_one", {"Nd": 1.2}, ["content.Nd", "[0, 1]"]),
    ("negative", {"Nd": 0.3, "Dy": -0.01}, ["content.Dy", "[0, 1]"]),
    ("sum_above_one", {"Nd": 0.7, "Pr": 0.5}, ["content", "more than 1"]),
    ("unknown_element", {"Nd": 0.3, "Xx": 0.01}, ["content", "Xx"]),
    ("not_a_number", {"Nd": "a lot"}, ["content.Nd", "[0, 1]"]),
    ("not_a_table", [0.3], ["content", "table"]),
]


@pytest.mark.parametrize(("content", "fragments"), [c[1:] for c in BAD_CONTENT],
                         ids=[c[0] for c in BAD_CONTENT])
def test_bad_content_names_file_material_field(content, fragments, mini, write_toml):
    """Invalid content raises ModelError naming the file, the material and the field."""
    mini["materials"]["oxide"] = {"content": content, "price_usd_per_t": 5.0}
    path = write_toml(mini)
    with pytest.raises(sim.ModelError) as err:
        sim.load_network(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path))
    for f in ["material 'oxide'", *fragments]:
        assert f in msg, (f, msg)


def test_elements_must_match_content(mini, write_toml):
    """Elements and content given together must agree; content_source needs a content."""
    mini["materials"]["oxide"] = {"elements": ["Nd"], "content": {"Nd": 0.6, "Pr": 0.2}}
    with pytest.raises(sim.ModelError, match="material 'oxide': elements: lists"):
        sim.load_network(write_toml(mini))
    mini["materials"]["oxide"] = {"elements": ["Nd", "Pr"], "content": {"Nd": 0.6, "Pr": 0.2}}
    assert sim.load_network(write_toml(mini)).materials["oxide"].elements == {"Nd", "Pr"}
    mini["materials"]["oxide"] = {"elements": ["Nd"], "content_source": "x"}
    with pytest.raises(sim.ModelError, match="content_source: content_source given without"):
        sim.load_network(write_toml(mini))
