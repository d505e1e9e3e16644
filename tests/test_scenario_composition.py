"""Scenario composition (sim/scenario.py, ``compose``): ``extends``, ``layers``, ``remove`` and
``append``, their merge rule and errors, and the shipped scenarios and layers built on them."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

import sim
from sim.errors import ModelError, ScenarioError
from sim.scenario import BUILTIN_DIR, list_layers

BASE = """
[scenario]
name = "base"
description = "a base"
start = 2025-01-01
end = 2026-01-01

[controls.a]
exporter = "CN"
elements = ["Dy"]
start = 2025-02-01
regime = "licensing"
review_days = 30
approval_probability = 0.5

[[controls.a.changes]]
from = 2025-06-01
approval_probability = 0.7

[controls.b]
exporter = "CN"
elements = ["Tb"]
start = 2025-03-01
regime = "ban"

[[tariffs]]
origin = "CN"
rate = 0.1
start = 2025-01-01

[[tariffs]]
origin = "CN"
rate = 0.2
start = 2025-05-01
"""


@pytest.fixture
def files(tmp_path):
    """Write TOML texts into tmp_path: files(name=text, ...) -> {name: path}."""
    def write(**texts):
        out = {}
        for name, text in texts.items():
            p = tmp_path / f"{name}.toml"
            p.write_text(textwrap.dedent(text))
            out[name] = p
        return out
    return write


def test_extends_merges_tables_by_key_and_replaces_arrays(files):
    f = files(base=BASE, child="""
        extends = "base.toml"
        [controls.a]
        approval_probability = 0.9
        [[tariffs]]
        origin = "CN"
        rate = 0.3
        start = 2025-01-01
        """)
    sc = sim.load_scenario(f["child"])
    a = sc.control("a")
    assert a.approval_probability == 0.9              # overridden key
    assert a.review_days.mean == 30 and a.elements == {"Dy"}     # inherited keys of the table
    assert [ch.params for ch in a.changes] == [{"approval_probability": 0.7}]
    assert sc.control("b").regime == "ban"           # inherited table
    assert [t.rate for t in sc.tariffs] == [0.3]     # the array is replaced
    assert sc.name == "child"                        # named after its file
    assert sc.start == dt.date(2025, 1, 1)


def test_append_and_remove(files):
    f = files(base=BASE, child="""
        extends = "base.toml"
        remove = ["controls.b", "scenario.end"]
        [[append.controls.a.changes]]
        from = 2025-09-01
        approval_probability = 0.2
        [[append.tariffs]]
        origin = "CN"
        rate = 0.05
        start = 2025-07-01
        """)
    sc = sim.load_scenario(f["child"])
    assert [c.id for c in sc.controls] == ["a"]
    assert sc.end is None
    assert [ch.params["approval_probability"] for ch in sc.control("a").changes] == [0.7, 0.2]
    assert [t.rate for t in sc.tariffs] == [0.1, 0.2, 0.05]


def test_layers_apply_in_order_then_own_content_then_api_layers(files):
    f = files(base=BASE, l1="""
        [layer]
        description = "first"
        [controls.a]
        approval_probability = 0.1
        review_days = 5
        """, l2="""
        [controls.a]
        approval_probability = 0.2
        """, child="""
        extends = "base.toml"
        layers = ["l1.toml", "l2.toml"]
        [controls.a]
        review_days = 7
        """)
    sc = sim.load_scenario(f["child"])
    assert sc.control("a").approval_probability == 0.2      # l2 over l1
    assert sc.control("a").review_days.mean == 7            # own content over layers
    over = sim.load_scenario(f["child"], layers=[str(f["l1"])])
    assert over.control("a").approval_probability == 0.1   # API layers come last
    assert over.name == "child+l1"


def test_error_brought_by_a_layer_names_the_layer(files):
    f = files(base=BASE, bad="""
        [controls.a]
        licence_scope = "lane"
        """, child="""
        extends = "base.toml"
        layers = ["bad.toml"]
        """)
    for load in (lambda: sim.load_scenario(f["child"]),
                 lambda: sim.load_scenario(f["base"], layers=[str(f["bad"])])):
        with pytest.raises(ScenarioError) as exc:
            load()
        assert "bad.toml" in str(exc.value) and "licence_validity_days" in str(exc.value)


def test_composed_scenario_round_trips_to_the_same_digest(files):
    f = files(base=BASE, child="""
        extends = "base.toml"
        [controls.a]
        approval_probability = 0.9
        """)
    sc = sim.load_scenario(f["child"])
    flat = sim.Scenario.from_dict(sc.to_dict())
    assert flat.digest() == sc.digest()
    assert "extends" not in sc.to_dict()


@pytest.mark.parametrize(("texts", "fragments"), [
    ({"a": 'extends = "b.toml"\n[scenario]\nname = "a"\n',
      "b": 'extends = "a.toml"\n[scenario]\nname = "b"\n'}, ["cycle", "a.toml", "b.toml"]),
    ({"a": 'extends = "a.toml"\n'}, ["cycle", "a.toml"]),
    ({"a": 'extends = "no-such-scenario"\n'}, ["a.toml", "extends", "unknown scenario"]),
    ({"a": 'extends = "missing.toml"\n'}, ["a.toml", "extends", "not found"]),
    ({"a": 'layers = ["nope"]\n'}, ["a.toml", "layers", "unknown layer"]),
    ({"a": 'layers = "l.toml"\n'}, ["a.toml", "layers", "list"]),
    ({"a": 'layers = ["l.toml"]\n', "l": 'extends = "truce-holds"\n'},
     ["l.toml", "extends", "layer cannot"]),
    ({"a": 'extends = "base.toml"\nremove = ["controls.zzz"]\n', "base": BASE},
     ["a.toml", "remove", "controls.zzz"]),
    ({"a": 'extends = "base.toml"\n[append.controls]\na = 5\n', "base": BASE},
     ["a.toml", "append.controls.a", "array or a table"]),
    ({"a": 'extends = "base.toml"\n[[append.controls.a.approval_probability]]\nx = 1\n',
      "base": BASE}, ["a.toml", "not an array"]),
    ({"a": 'extends = "base.toml"\n[controls.a]\nregime = "embargo"\n', "base": BASE},
     ["a.toml", "controls.a", "regime"]),
    ({"a": 'extends = "base.toml"\n', "base": '[scenario]\nstart = "soon"\n'},
     ["base.toml", "start"]),
])
def test_composition_errors_name_the_file(files, texts, fragments):
    f = files(**texts)
    with pytest.raises(ScenarioError) as exc:
        sim.load_scenario(f["a"])
    msg = str(exc.value)
    assert isinstance(exc.value, ModelError) and "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg


def test_cli_reports_a_composition_error_without_traceback(files, capsys):
    from sim.cli import main
    f = files(a='extends = "b.toml"\n', b='extends = "a.toml"\n')
    assert main(["scenario", "validate", str(f["a"])]) == 2
    err = capsys.readouterr().err
    assert "cycle" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# the shipped scenarios and layers
# ---------------------------------------------------------------------------------------------

def test_truce_scenarios_extend_truce_holds_and_differ_where_they_should():
    holds = sim.load_scenario("truce-holds")
    expires = sim.load_scenario("truce-expires")
    uncertain = sim.load_scenario("truce-uncertain")
    assert (holds.truce.extend, expires.truce.reinstate) == (1.0, 1.0)
    assert (uncertain.truce.reinstate, uncertain.truce.extend, uncertain.truce.escalate) == \
        (0.35, 0.5, 0.15)
    assert uncertain.truce.escalation["approval_probability"] == 0.1
    assert holds.controls == expires.controls == uncertain.controls

    def us_rate(sc, date):      # the CN -> US tariff on NdFeB magnets in force on a date
        return sum(t.rate for t in sc.tariffs if t.destination == "US"
                   and (t.materials is None or "ndfeb_magnet" in t.materials)
                   and t.start <= date and (t.end is None or date < t.end))
    day = dt.date(2027, 1, 1)
    assert us_rate(expires, day) == pytest.approx(us_rate(holds, day) + 0.10)
    before = dt.date(2026, 1, 1)
    assert us_rate(expires, before) == pytest.approx(us_rate(holds, before))
    # the speculative Japan regime is no longer in the truce scenarios, only in its layer
    assert not any(ch.destinations == ("JP",) for ch in holds.control("apr_2025").changes)
    jp = sim.load_scenario("truce-holds+japan-2026")
    assert jp.name == "truce-holds+japan-2026"
    jp_change = [ch for ch in jp.control("apr_2025").changes if ch.destinations == ("JP",)]
    assert len(jp_change) == 1 and jp_change[0].params["approval_probability"] == 0.5


def test_shipped_licences_express_the_2025_record():
    apr = sim.load_scenario("controls-apr-2025").control("apr_2025")
    assert apr.licence_scope == "shipment" and apr.on_denial == "reapply"
    temp = [ch for ch in apr.changes if ch.buyers == ("us_auto",)]
    assert len(temp) == 1
    assert temp[0].params["licence_scope"] == "buyer"
    assert temp[0].params["licence_validity_days"] >= 182          # at least six months
    general = [ch for ch in sim.load_scenario("truce-holds").control("apr_2025").changes
               if ch.start == dt.date(2025, 12, 2) and not ch.buyers and not ch.destinations]
    assert len(general) == 1
    assert general[0].params == {"licence_scope": "buyer", "licence_validity_days": 365.0,
                                 "renew_before_days": 90.0}
    # renewals are filed ahead of expiry by more than the longest review of the April regime
    assert general[0].params["renew_before_days"] >= apr.review_days.max
    holds = sim.load_scenario("controls-apr-2025").clearance
    assert len(holds) == 1 and holds[0].start == dt.date(2025, 4, 4)
    assert {"ndfeb_magnet", "ndfeb_hre_magnet", "smco_magnet"} <= holds[0].materials


@pytest.mark.parametrize("layers", [(), ("japan-2026",), ("general-licence-terms",),
                                    ("japan-2026", "general-licence-terms")])
def test_shipped_scenarios_with_layers_validate_and_run(layers):
    net = sim.load_network("rare_earth_2025")
    for name in sim.list_scenarios():
        if name == "baseline" and layers:
            continue
        sc = sim.load_scenario(name, layers=layers)
        sc.check_network(net)
        run = sim.simulate(net, sc, seed=1, horizon_days=420)
        assert abs(run.material_balance()["residual"]).max() < 1e-6
        if name != "baseline":
            d = run.licence_decisions()
            assert (d["event"] == "applied").sum() > 0
            assert len(run.clearance_holds()) > 0


def test_every_shipped_file_and_layer_carries_sources():
    for p in [*BUILTIN_DIR.glob("*.toml"), *(BUILTIN_DIR / "layers").glob("*.toml")]:
        text = p.read_text()
        assert "source" in text, p
    assert {"japan-2026", "general-licence-terms"} <= set(list_layers())
    assert all(list_layers().values())


def test_cli_lists_layers_validates_and_shows_resolved(capsys, tmp_path):
    import tomllib

    from sim.cli import main
    assert main(["scenario", "list"]) == 0
    out = capsys.readouterr().out
    assert "truce-uncertain" in out and "japan-2026" in out and "general-licence-terms" in out
    assert main(["scenario", "validate", "truce-uncertain+japan-2026"]) == 0
    assert "truce-uncertain+japan-2026" in capsys.readouterr().out
    assert main(["scenario", "show", "truce-expires", "--resolved"]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert "extends" not in shown
    assert sim.Scenario.from_dict(shown).digest() == sim.load_scenario("truce-expires").digest()
