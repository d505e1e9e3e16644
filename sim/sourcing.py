"""Cost-aware sourcing: buyers shift order shares among their suppliers when tariffs make
landed costs diverge.

Without a ``[sourcing]`` section (or with ``rule = "fixed"``) a buyer splits its orders in the
fixed ``share`` of each inbound lane, whatever it costs: tariffs change costs, not flows. With
``rule = "cost-aware"`` a buyer's share of lane *i* (among the lanes into it of one material,
its qualified suppliers in the network) is a multinomial-logit reweighting of the network's
share::

    landed_i = price x (1 + tariff_i) + premium_i
    share_i  = base_i x exp(-beta x (landed_i / min_j landed_j - 1)) / (sum over the lanes)

where ``base_i`` is the lane's ``share`` in the network (the split at equal landed cost),
``tariff_i`` the ad-valorem tariff in force on the lane, ``premium_i`` an optional premium in
USD per tonne by exporter country, and ``beta`` the ``elasticity``: for small cost gaps
``d ln(share_i / share_j) = -beta x d(landed_i / landed_min)``, so it plays the part of a trade
elasticity. Shares are recomputed when a tariff starts or ends (a policy event; no per-order
work) and once before time starts; the buyer's usual rules then apply (lanes closed, banned or
avoided drop out and the rest are renormalised). The ``min_j`` runs over every inbound lane
of the buyer and material, so shares depend on tariffs only, not on which lanes are usable.

Schema (a scenario section, or a layer file holding this section and a ``[layer]``
description)::

    [sourcing]
    rule = "cost-aware"           # or "fixed" (the default: the network's shares)
    elasticity = 0.76             # beta >= 0
    importers = ["US"]            # optional: only buyers in these countries (default: all)
    premiums_usd_per_t = { JP = 0.0 }   # optional, by exporter country
    source = "..."

The strength ``beta`` is an assumption; it sits in a layer that a study switches on
(:func:`sim.scenario.with_sourcing`, also ``sim.with_sourcing``;
``networks/scenarios/layers/cost-aware-sourcing.toml``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ScenarioError

__all__ = ["Sourcing", "RULES", "parse_sourcing", "cost_aware_shares", "SourcingRule"]

RULES = ("fixed", "cost-aware")


@dataclass(frozen=True)
class Sourcing:
    """How buyers split orders among their suppliers (see the module docstring)."""

    rule: str = "fixed"
    elasticity: float = 0.0
    importers: tuple[str, ...] | None = None
    premiums_usd_per_t: tuple[tuple[str, float], ...] = ()
    source: str = ""

    @property
    def active(self) -> bool:
        """True when shares respond to costs (a rule other than the fixed shares)."""
        return self.rule != "fixed"


def parse_sourcing(t, where: str = "sourcing") -> Sourcing:
    """A :class:`Sourcing` from the ``[sourcing]`` table of a scenario (ScenarioError on bad
    input, naming the field)."""
    from .network import ISO_COUNTRIES

    if not isinstance(t, dict):
        raise ScenarioError(f"must be a table, got {t!r}", where=where)
    allowed = {"rule", "elasticity", "importers", "premiums_usd_per_t", "source", "note"}
    extra = sorted(set(t) - allowed)
    if extra:
        raise ScenarioError(f"unknown field(s) {extra}; allowed: {sorted(allowed - {'note'})}",
                            where=where)
    rule = t.get("rule", "fixed")
    if rule not in RULES:
        raise ScenarioError(f"must be one of {', '.join(map(repr, RULES))}, got {rule!r}",
                            where=where, field="rule")
    beta = t.get("elasticity", 0.0)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) \
            or beta < 0:
        raise ScenarioError(f"must be a finite number >= 0, got {beta!r}", where=where,
                            field="elasticity")
    if rule == "cost-aware" and "elasticity" not in t:
        raise ScenarioError("the cost-aware rule needs 'elasticity' (beta >= 0)", where=where,
                            field="elasticity")
    importers = t.get("importers")
    if importers is not None:
        if not isinstance(importers, list) or not all(
                isinstance(c, str) and c in ISO_COUNTRIES for c in importers):
            raise ScenarioError(f"must be a list of ISO country codes such as ['US'], got "
                                f"{importers!r}", where=where, field="importers")
        importers = tuple(importers)
    prem = t.get("premiums_usd_per_t", {})
    if not isinstance(prem, dict):
        raise ScenarioError(f"must be a table of country = USD per tonne, got {prem!r}",
                            where=where, field="premiums_usd_per_t")
    for c, v in prem.items():
        if c not in ISO_COUNTRIES:
            raise ScenarioError(f"{c!r} is not an ISO 3166-1 alpha-2 country code",
                                where=where, field="premiums_usd_per_t")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0:
            raise ScenarioError(f"premium for {c} must be a finite number >= 0, got {v!r}",
                                where=where, field="premiums_usd_per_t")
    return Sourcing(rule, float(beta), importers,
                    tuple(sorted((c, float(v)) for c, v in prem.items())),
                    str(t.get("source", "")))


def cost_aware_shares(base, landed, elasticity: float) -> list[float]:
    """The cost-aware shares of lanes with network shares *base* and landed costs *landed*
    (same order): ``base_i x exp(-beta x (landed_i / min landed - 1))``, normalised to sum to
    one. With no positive landed cost, or no positive weight, the base shares normalised."""
    base = [float(b) for b in base]
    lowest = min(landed) if landed else 0.0
    if lowest > 0.0:
        weights = [b * math.exp(-elasticity * (c / lowest - 1.0)) for b, c in zip(base, landed)]
    else:
        weights = base
    total = math.fsum(weights)
    if total <= 0.0:
        total = math.fsum(base)
        weights = base
    if total <= 0.0:
        return [1.0 / len(base)] * len(base) if base else []
    return [w / total for w in weights]


class SourcingRule:
    """The cost-aware rule applied to a model (built by the policy engine when a scenario's
    sourcing is active): for each buyer stock with several inbound lanes, it sets the lanes'
    ``share`` from their landed costs when tariffs change."""

    def __init__(self, model, sourcing: Sourcing) -> None:
        self.model = model
        self.sourcing = sourcing
        net = model.network
        premiums = dict(sourcing.premiums_usd_per_t)
        self.premium = {lane.index: premiums.get(net.nodes[lane.spec.src].country, 0.0)
                        for lane in model.lanes}
        importers = sourcing.importers
        self.buyers = [st for st in model.stocks.values()
                       if len(st.lanes_in) > 1
                       and (importers is None or st.node.country in importers)]
        self._ids = {id(st) for st in self.buyers}

    @classmethod
    def for_model(cls, model, sourcing: Sourcing | None) -> "SourcingRule | None":
        """The rule for *model*, or None when sourcing is absent or fixed (nothing to do)."""
        if sourcing is None or not sourcing.active:
            return None
        return cls(model, sourcing)

    def set_shares(self, st) -> None:
        """Set the shares of the lanes into buyer stock *st* from their landed costs now."""
        lanes = st.lanes_in
        landed = [lane.price * (1.0 + lane.tariff) + self.premium[lane.index] for lane in lanes]
        shares = cost_aware_shares([lane.spec.share for lane in lanes], landed,
                                   self.sourcing.elasticity)
        for lane, share in zip(lanes, shares):
            lane.share = share

    def start(self) -> None:
        """Before time starts: shares from the premiums alone (no tariff is in force yet)."""
        for st in self.buyers:
            self.set_shares(st)
            self.model.refresh_lanes(st)

    def tariffs_changed(self, lanes, now: float) -> None:
        """After tariffs on *lanes* started or ended: new shares for their buyers, who then
        order by them (:meth:`Model.lanes_changed`)."""
        stocks = []
        seen = set()
        for lane in lanes:
            st = lane.dst
            if id(st) in self._ids and id(st) not in seen:
                seen.add(id(st))
                stocks.append(st)
        for st in stocks:
            self.set_shares(st)
        if stocks:
            self.model.lanes_changed(stocks, now)
