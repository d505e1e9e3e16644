"""The rules in force: export controls, the truce, tariffs, outages, closures and surges.

:class:`PolicyEngine` turns a :class:`~sim.scenario.Scenario` into SimPy processes (policy
events are rare, so generator processes are fine here) and into table look-ups prepared on the
lanes before time starts, updated only when a policy event fires:

* ``lane.banned``: an export ban covers the lane; buyers re-route to their other lanes.
* ``lane.gate``: some licensing, quota or extraterritorial control may cover shipments on the
  lane; each shipment then passes :meth:`PolicyEngine.gate`, where the decision of each covering
  control's regime (:data:`DECISIONS`) returns it, reviews it, or counts it against a quota.
  Lanes that no control can touch have ``gate = None`` and pay nothing.
* ``lane.tariff``: the ad-valorem tariff rate paid on shipments dispatched now.
* ``lane.share``: under a cost-aware ``[sourcing]`` rule, the buyers' shares follow landed
  costs, recomputed when a tariff starts or ends (:mod:`sim.sourcing`).
* ``lane.closed``: a scenario closure is in force; buyers place no new orders on the lane.
  The orders already queued for it at the supplier are cancelled and re-ordered
  elsewhere (``queued_orders = "reroute"``) or stay queued and ship (``"keep"``).

A control covers a shipment when it is in force (started, not ended, not suspended by a truce),
the material contains one of its elements, the shipment crosses a border into a covered
destination, and either the exporting node is in the controlling country (a direct export) or
(extraterritorial rule) the controlling country's share of the shipment's content by value
exceeds the de minimis fraction.

Licences: under ``licence_scope = "shipment"`` each covered shipment is reviewed (a drawn
review time and approval). Under a wider scope (``"lane"``, ``"buyer"``, ``"country"``,
``"exporter"``) a control keeps the licences it granted by scope key: a shipment passes at
once under a valid one; otherwise it waits on the scope's pending application, or files one
(one application per scope at a time, whatever the number of shipments waiting). A granted
licence releases every shipment that waited on it and lasts ``licence_validity_days``. A
denial returns the goods (``"cancel"``), files again at once (``"requeue"``) or after
``reapply_days`` (``"reapply"``, the goods waiting). With ``renew_before_days`` above 0 the
exporter files the renewal of a licence that shipments have used that many days before it
expires (one event per licence, scheduled at its grant; an unused licence is not renewed): the
renewal is reviewed and approved like any application of its scope (same streams); a granted
renewal's validity starts when the old licence ends (or at its grant, if later), and a denied
one leaves the old licence to run out, after which shipments apply again as without renewal
(a renewal still under review when the old licence lapses is the scope's pending application:
shipments wait on it and its denial follows ``on_denial``). Every decision is appended to
``PolicyEngine.decisions`` (the licence decision log; converted to a table after the run).

Clearance holds (``[[clearance]]``): a shipment that has passed every control goes through the
holds in force on its lane (testing: a drawn delay, with a finite number of servers a first
come, first served queue) before :meth:`Model.dispatch <sim.engine.Model.dispatch>`, which is
where every released shipment leaves (and crosses the border).

Regimes are a registry: :data:`sim.scenario.REGIME_TABLE` holds each regime's parameters and
whether it closes the lanes it covers directly; :data:`DECISIONS` holds the function that
decides a shipment it covers. To add a regime: its entry in the table and its decision here
(a function of the signature of the ``_decide_*`` functions, returning True when it took the
shipment).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .distributions import Uniform
from .errors import ScenarioError
from .records import PRIORITY_ARRIVAL, PRIORITY_POLICY
from .scenario import REGIME_TABLE
from .streams import SwitchingSampler

__all__ = ["PolicyEngine", "Multiplier", "PolicyEvent", "LICENCE_EVENTS", "licence_table",
           "DECISIONS", "scheduled_events"]

# the events of the licence decision log (Run.licence_decisions), by code
LICENCE_EVENTS = ("applied", "granted", "denied", "expired", "used", "renewal_applied")
_APPLIED, _GRANTED, _DENIED, _EXPIRED, _USED, _RENEWAL = 0, 1, 2, 3, 4, 5

# licence approvals: U(0, 1) draws (``rng.uniform(0, 1)`` is ``rng.random()``, value for value)
_STANDARD_UNIFORM = Uniform(0.0, 1.0)
_REVIEW_STREAM, _APPROVAL_STREAM = "licence_review", "licence_approval"


def _surge_label(s) -> str:
    """The label of a demand surge's event."""
    who = s.node or f"sector {s.sector}"
    return f"demand x{s.factor:g} ({who})"


def scheduled_events(scenario, start, horizon: float) -> list[tuple[float, str, str]]:
    """The dated policy events of *scenario* known before time starts, as ``(day, kind,
    label)``, for a run from the date *start* over *horizon* days (see
    :func:`sim.engine.run_window`), without building a model: the demand surges as the
    policy engine notes them when it starts (in scenario order, a surge begun before the
    start on day 0), then, sorted, the controls and their regime changes, the truce's start
    and expiry and the tariffs that fall within the run."""
    def day_of(date) -> float:
        return float((date - start).days)

    out = [(max(day_of(s.start), 0.0), "surge", _surge_label(s))
           for s in scenario.demand_surges if day_of(s.start) < horizon]
    dated = []
    for c in scenario.controls:
        dated.append((day_of(c.start), "control", f"{c.id} ({c.regime})"))
        for ch in c.changes:
            dated.append((day_of(ch.start), "change", f"{c.id} change"))
    if scenario.truce is not None:
        dated.append((day_of(scenario.truce.start), "truce", "truce starts"))
        dated.append((day_of(scenario.truce.expiry), "truce", "truce expiry"))
    for t in scenario.tariffs:
        dated.append((day_of(t.start), "tariff", f"tariff {t.rate:.0%} {t.origin}"))
    return out + sorted({e for e in dated if 0 <= e[0] < horizon})


def _licence_stream(kind: str, cid: str, lane_id: str) -> tuple:
    """Name of the licence review-time or approval stream of one control on one lane."""
    return (kind, cid, lane_id)


def _licence_keys(lane, src_country: str, dst_country: str) -> dict:
    """What a licence of each scope is keyed on, for shipments on *lane* (a control keeps
    its licences by these keys): the lane itself (exporter node, buyer, material), the
    exporter and buyer (every material), the exporter and importing country, the exporter."""
    src, dst = lane.spec.src, lane.spec.dst
    return {"lane": ("lane", lane.index), "buyer": ("buyer", src, dst),
            "country": ("country", src, dst_country), "exporter": ("exporter", src)}


class _Licence:
    """A granted licence (kept by its control under its scope key): its control, when
    granted, until when valid, what shipped under it, and its renewal granted ahead (which
    takes its place under the scope key once it has lapsed)."""

    __slots__ = ("cid", "lane", "granted", "until", "tonnes", "shipments", "renewal")

    def __init__(self, cid: str, lane: int, granted: float, until: float) -> None:
        self.cid = cid
        self.lane = lane          # the lane whose shipment applied for it (for the log)
        self.granted = granted
        self.until = until
        self.tonnes = 0.0
        self.shipments = 0
        self.renewal = None       # _Licence granted on a renewal filed before this one lapsed


class _Application:
    """A pending licence application of one scope: the shipments waiting on it (later
    shipments in the same scope join it rather than apply again, as an exporter would)."""

    # it names its control and gate step rather than holding them, so that no reference cycle
    # (control -> pending -> application -> control) outlives the model (Model.release)
    __slots__ = ("cid", "pos", "key", "lane", "waiting", "params", "filed", "renews")

    def __init__(self, cid: str, pos: int, key, lane: int) -> None:
        self.cid = cid
        self.pos = pos            # its gate step (review and approval streams) on that lane
        self.key = key
        self.lane = lane          # the lane whose shipment filed it
        self.waiting: list = []   # (lane, qty, prov, shipped_at, cleared control ids)
        self.params: dict = {}
        self.filed = 0.0          # when the application under review was filed
        self.renews = None        # the _Licence it renews (filed ahead of that one's expiry)


class _ClearanceState:
    """A clearance hold in force or not, its testing servers (None: unlimited) and queue."""

    __slots__ = ("spec", "index", "active", "servers", "busy", "queue", "sampler")

    def __init__(self, spec, index: int, sampler) -> None:
        self.spec = spec
        self.index = index
        self.active = False
        self.servers = spec.servers
        self.busy = 0
        self.queue: deque = deque()
        self.sampler = sampler



@dataclass(frozen=True)
class PolicyEvent:
    """A policy change that happened during a run (for plots and logs)."""

    day: float
    kind: str
    label: str


class Multiplier:
    """A piecewise-constant demand multiplier m(t) with its integral and inverse integral."""

    def __init__(self, pieces: list[tuple[float, float, float]], horizon: float) -> None:
        # pieces: (start day, end day, factor); overlapping pieces multiply
        cuts = sorted({0.0, horizon, *[max(0.0, min(horizon, p[0])) for p in pieces],
                       *[max(0.0, min(horizon, p[1])) for p in pieces]})
        factors = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            mid = 0.5 * (a + b)
            f = 1.0
            for s, e, k in pieces:
                if s <= mid < e:
                    f *= k
            factors.append(f)
        self.cuts = np.array(cuts)
        self.factors = np.array(factors)
        self.cum = np.concatenate([[0.0], np.cumsum(np.diff(self.cuts) * self.factors)])

    def __call__(self, times: np.ndarray) -> np.ndarray:
        idx = np.clip(np.searchsorted(self.cuts, times, side="right") - 1, 0, len(self.factors) - 1)
        return self.factors[idx]

    def cumulative(self, t: float) -> float:
        """Integral of m from 0 to *t* (the operational time at *t*)."""
        return float(np.interp(t, self.cuts, self.cum))

    def inverse_cumulative(self, x: np.ndarray) -> np.ndarray:
        """Calendar times at which the operational clock reads *x* (m > 0 pieces)."""
        keep = np.concatenate([[True], np.diff(self.cum) > 0])
        return np.interp(x, self.cum[keep], self.cuts[keep])


class _ControlState:
    __slots__ = ("spec", "active", "suspended", "params", "buyer_params", "dest_params",
                 "quota_used", "quota_queue", "direct_lanes", "extra_lanes", "quota_period",
                 "direct_set", "extra_set",
                 "capacity_on", "licences", "pending")

    def __init__(self, spec) -> None:
        if spec.regime not in DECISIONS:       # a control built in Python, not read from a file
            raise ScenarioError(f"unknown regime {spec.regime!r}; expected one of "
                                f"{tuple(DECISIONS)}", where=f"controls.{spec.id}",
                                field="regime")
        self.spec = spec
        self.active = False
        self.suspended = False
        self.params = {k: getattr(spec, k) for k in ("regime", "review_days", "approval_probability",
                                                     "on_denial", "avoid_days", "quota_t",
                                                     "quota_period_days", "de_minimis",
                                                     "licence_scope", "licence_validity_days",
                                                     "reapply_days", "licence_validity_from",
                                                     "renew_before_days")}
        self.licences: dict = {}      # scope key -> _Licence (the latest granted)
        self.pending: dict = {}       # scope key -> _Application
        self.buyer_params: dict[str, dict] = {}
        self.dest_params: dict[str, dict] = {}
        self.capacity_on = False
        self.quota_used = 0.0
        self.quota_period = None   # index of the quota period that quota_used belongs to
        self.quota_queue: list = []
        self.direct_lanes: list = []
        self.extra_lanes: list = []

    @property
    def in_force(self) -> bool:
        return self.active and not self.suspended

    def params_for(self, buyer: str, country: str = "") -> dict:
        bp = self.buyer_params.get(buyer)
        dp = self.dest_params.get(country)
        if bp is None and dp is None:
            return self.params
        merged = dict(self.params)
        if dp is not None:
            merged.update(dp)
        if bp is not None:
            merged.update(bp)
        return merged


class _GateStep:
    """One control's check of shipments on one gated lane (see :meth:`PolicyEngine.gate`):
    the control, whether it reaches the lane by the goods' origin (extraterritorial) rather
    than by the exporter, the position of its exporter in the provenance vectors (-1: not
    tracked), the lane's rare-earth value share, and its licence review and approval draws."""

    __slots__ = ("state", "cid", "by_origin", "origin_index", "content_share", "review",
                 "approval", "keys", "pos")

    def __init__(self, state: _ControlState, by_origin: bool, origin_index: int,
                 content_share: float, review: SwitchingSampler,
                 approval: SwitchingSampler, pos: int) -> None:
        self.state = state
        self.cid = state.spec.id
        self.by_origin = by_origin
        self.origin_index = origin_index
        self.content_share = content_share
        self.review = review
        self.approval = approval
        self.keys = None          # licence scope -> key of this lane's shipments (at first use)
        self.pos = pos            # its place among the lane's steps


def licence_table(rows: list, horizon: float) -> dict:
    """Licence decision rows (:meth:`PolicyEngine.tables`) as numpy columns, in time order,
    decisions at or after *horizon* left out: ``time``, ``event`` (index into
    :data:`LICENCE_EVENTS`), ``control``, ``lane`` (lane index), ``tonnes`` and
    ``review_days`` (of applications and decisions; NaN for uses and expiries)."""
    rows = [r for r in rows if r[0] < horizon]
    n = len(rows)
    time = np.fromiter((r[0] for r in rows), dtype=float, count=n)
    order = np.argsort(time, kind="stable")
    review = np.fromiter((r[5] for r in rows), dtype=float, count=n)
    event = np.fromiter((r[1] for r in rows), dtype=np.int8, count=n)
    review[(event == _USED) | (event == _EXPIRED)] = math.nan
    return {"time": time[order], "event": event[order],
            "control": np.array([r[2] for r in rows], dtype=object)[order],
            "lane": np.fromiter((r[3] for r in rows), dtype=np.int64, count=n)[order],
            "tonnes": np.fromiter((r[4] for r in rows), dtype=float, count=n)[order],
            "review_days": review[order]}


# -- the regimes' decisions -------------------------------------------------------------------
# One function per regime of sim.scenario.REGIME_TABLE, called by PolicyEngine.gate for each
# control in force that covers a shipment, in the order of the lane's controls, as
# ``decide(policy, step, p, acc, lane, qty, prov, now, shipped_at, cleared)``: *step* is the
# control's _GateStep on the lane, *p* the parameters in force for the shipment's buyer, the
# rest the shipment as gate() has it. It returns True when it took the shipment (nothing else
# decides it), False to leave it to the next control and then to what it added to *acc*:
# ``[quota controls to pass, per-shipment licence reviews (step, p), scoped licences used]``,
# each None until some control adds one. (Plain arguments and a list, not an object: gate()
# runs for every shipment on a gated lane.)

_QUOTAS, _REVIEWS, _USED_LICENCES = 0, 1, 2


def _decide_ban(policy: "PolicyEngine", step: _GateStep, p: dict, acc: list, lane, qty: float,
                prov, now: float, shipped_at: float, cleared: tuple) -> bool:
    """A ban returns the shipment to its supplier (the lanes a ban covers directly are closed
    to orders: what comes here was covered by origin, or was under way before)."""
    policy._deny(lane, qty, now, p, step.cid)
    return True


def _decide_quota(policy: "PolicyEngine", step: _GateStep, p: dict, acc: list, lane,
                  qty: float, prov, now: float, shipped_at: float, cleared: tuple) -> bool:
    """A quota takes the shipment's tonnes from the period's quota once any licence reviews
    are through (:meth:`PolicyEngine._quota_take`; the shipment waits for the next period
    when the quota is used up)."""
    if acc[_QUOTAS] is None:
        acc[_QUOTAS] = []
    acc[_QUOTAS].append(step.state)
    return False


def _decide_licensing(policy: "PolicyEngine", step: _GateStep, p: dict, acc: list, lane,
                      qty: float, prov, now: float, shipped_at: float, cleared: tuple) -> bool:
    """Licensing reviews the shipment (``licence_scope = "shipment"``), or lets it pass under
    a valid licence of its scope, or makes it wait on the scope's application."""
    scope = p["licence_scope"]
    if scope == "shipment":
        if acc[_REVIEWS] is None:
            acc[_REVIEWS] = []
        acc[_REVIEWS].append((step, p))
        return False
    if cleared and step.cid in cleared:
        return False
    keys = step.keys
    if keys is None:
        keys = step.keys = _licence_keys(lane, lane.src.node.country, lane.dst.node.country)
    key = keys[scope]
    cs = step.state
    lic = cs.licences.get(key)
    if lic is not None and lic.renewal is not None and lic.until <= now:
        # lapsed, renewed ahead: the renewal's validity follows on
        lic = cs.licences[key] = lic.renewal
    if lic is not None and lic.until > now:
        if acc[_USED_LICENCES] is None:
            acc[_USED_LICENCES] = []
        acc[_USED_LICENCES].append(lic)
        return False
    policy._await_licence(step, key, p, (lane, qty, prov, shipped_at, cleared), now)
    return True


#: regime -> its decision (see above); every regime of sim.scenario.REGIME_TABLE has one
DECISIONS = {"ban": _decide_ban, "licensing": _decide_licensing, "quota": _decide_quota}


class PolicyEngine:
    """Applies a scenario to a :class:`~sim.engine.Model` (built by the model itself)."""

    def __init__(self, model, scenario) -> None:
        self.model = model
        self.scenario = scenario
        self.events: list[PolicyEvent] = []
        self.truce_outcomes: list[str] = []
        self.licence_log: list = []      # (time, control id, lane index, qty, review days, approved)
        # the licence decision log: (time, event code, control id, lane index, tonnes,
        # review days); licences granted under a scope, for their expiry rows after the run
        self.decisions: list = []
        self.granted: list = []
        # (arrival, start of testing, end of testing, clearance index, lane index, tonnes)
        self.clearance_log: list = []
        scenario.check_network(model.network)
        net = model.network
        self.controls = {c.id: _ControlState(c) for c in scenario.controls}
        mats = net.materials
        for lane in model.lanes:
            lane.tariff = 0.0
            lane.avoid = False
            src_c = net.nodes[lane.spec.src].country
            dst_c = net.nodes[lane.spec.dst].country
            if src_c == dst_c:
                continue        # domestic shipments are not exports
            mat = mats[lane.material]
            for cs in self.controls.values():
                c = cs.spec
                if not mat.contains_any(c.elements) or not c.covers_destination(dst_c):
                    continue
                if src_c == c.exporter:
                    if c.direct:
                        cs.direct_lanes.append(lane)
                elif c.extraterritorial and dst_c != c.exporter:
                    cs.extra_lanes.append(lane)
        # value share of rare-earth content in each lane's material as made at its source
        self.content_share = {}
        for lane in model.lanes:
            node = net.nodes[lane.spec.src]
            prod = node.production.get(lane.material)
            share = 1.0
            if prod is not None and prod.recipe:
                out_price = mats[lane.material].price_usd_per_t
                inp = sum(a * mats[m].price_usd_per_t for m, a in prod.recipe.items())
                share = min(1.0, inp / out_price) if out_price > 0 else 1.0
            self.content_share[lane.index] = share
        for cs in self.controls.values():
            cs.direct_set = frozenset(l.index for l in cs.direct_lanes)
            cs.extra_set = frozenset(l.index for l in cs.extra_lanes)
        # per lane, the controls that may gate it (in scenario order) and whether by origin
        self._lane_controls: dict[int, list] = {}
        for cs in self.controls.values():
            for index in sorted(cs.direct_set | cs.extra_set):
                self._lane_controls.setdefault(index, []).append(
                    (cs, index not in cs.direct_set))
        # the licence streams of every lane a control may gate, seeded in one pass (each is
        # opened at the lane's first shipment under the control; see Streams.prepare)
        model.streams.prepare([_licence_stream(kind, cs.spec.id, model.lanes[index].id)
                               for index, gating in self._lane_controls.items()
                               for cs, _ in gating
                               for kind in (_REVIEW_STREAM, _APPROVAL_STREAM)])
        self._country_index = {c: i for i, c in enumerate(model.origins)}
        # cost-aware sourcing (sim.sourcing): None keeps the network's fixed shares
        from .sourcing import SourcingRule
        self.sourcing = SourcingRule.for_model(model, scenario.sourcing)
        # what gate() checks for each gated lane, worked out once (its draws open their
        # streams at the first licence)
        self._lane_steps = {
            index: tuple(_GateStep(cs, by_origin, self._country_index.get(cs.spec.exporter, -1),
                                   self.content_share[index],
                                   SwitchingSampler(model.streams, _licence_stream(
                                       _REVIEW_STREAM, cs.spec.id, model.lanes[index].id)),
                                   SwitchingSampler(model.streams, _licence_stream(
                                       _APPROVAL_STREAM, cs.spec.id, model.lanes[index].id)),
                                   pos)
                         for pos, (cs, by_origin) in enumerate(gating))
            for index, gating in self._lane_controls.items()}
        # clearance holds: per lane, the holds that may cover it (in scenario order)
        self.clearances = [
            _ClearanceState(h, i, SwitchingSampler(model.streams, ("clearance", h.id)))
            for i, h in enumerate(scenario.clearance)]
        self._lane_clearance: dict[int, tuple] = {}
        for lane in model.lanes if self.clearances else ():
            src_c = net.nodes[lane.spec.src].country
            dst_c = net.nodes[lane.spec.dst].country
            if src_c == dst_c:
                continue
            mat = mats[lane.material]
            held = tuple(cl for cl in self.clearances
                         if cl.spec.exporter == src_c and cl.spec.covers_destination(dst_c)
                         and (lane.material in cl.spec.materials
                              or mat.contains_any(cl.spec.elements)))
            if held:
                self._lane_clearance[lane.index] = held
        if not self._lane_clearance:
            # nothing is ever held: a released shipment goes straight to Model.dispatch (the
            # instance attribute takes the method's place, saving a call per shipment)
            self._release = model.dispatch

    # -- demand -----------------------------------------------------------------------------
    def demand_multiplier(self, node, material: str) -> Multiplier | None:
        """The surge multiplier of a demand stream, or None when no surge touches it."""
        pieces = []
        for s in self.scenario.demand_surges:
            if s.node is not None and s.node != node.id:
                continue
            if s.sector is not None and s.sector != node.sector:
                continue
            if s.material is not None and s.material != material:
                continue
            pieces.append((self.model.day_of(s.start), self.model.day_of(s.end), s.factor))
        if not pieces:
            return None
        return Multiplier(pieces, self.model.horizon)

    # -- scheduling ---------------------------------------------------------------------------
    def start(self) -> None:
        """Schedule every policy process of the scenario."""
        env = self.model.env
        sc = self.scenario
        if self.sourcing is not None:
            self.sourcing.start()
        for cs in self.controls.values():
            env.process(self._control_process(cs))
        for cl in self.clearances:
            env.process(self._clearance_process(cl))
        if sc.truce is not None:
            env.process(self._truce_process(sc.truce))
        for t in sc.tariffs:
            env.process(self._tariff_process(t))
        for i, o in enumerate(sc.outages):
            env.process(self._outage_process(o, i))
        for lc in sc.lane_closures:
            # plain callbacks, not a process: a scenario may close hundreds of lanes. The first
            # one is due at time 0, where a process would start, so simultaneous policy events
            # keep the order they had as processes.
            self.model.at(0.0, PRIORITY_POLICY, self._closure_due, lc)
        for s in sc.demand_surges:
            self._note(self.model.day_of(s.start), "surge", _surge_label(s))

    def _note(self, day: float, kind: str, label: str) -> None:
        if day < self.model.horizon:
            self.events.append(PolicyEvent(max(day, 0.0), kind, label))

    def _sleep(self, delay: float):
        """An event *delay* days ahead at policy priority (policy changes precede arrivals)."""
        return self.model.sleep(delay)

    def _wait_until(self, day: float):
        m = self.model
        if day > m.now:
            yield self._sleep(day - m.now)

    def _control_process(self, cs: _ControlState):
        m = self.model
        c = cs.spec
        steps = [(m.day_of(c.start), "start", None)]
        steps += [(m.day_of(ch.start), "change", ch) for ch in c.changes]
        steps += [(m.day_of(ch.until), "revert", ch) for ch in c.changes if ch.until is not None]
        if c.end is not None:
            steps.append((m.day_of(c.end), "end", None))
        steps.sort(key=lambda s: (s[0], {"start": 0, "revert": 1, "change": 1, "end": 2}[s[1]]))
        selective: list = []        # the changes for some buyers or destinations in force
        for day, what, ch in steps:
            if day >= m.horizon:
                return
            yield from self._wait_until(day)
            if what == "start":
                cs.active = True
                self._note(day, "control", f"{c.id}: {cs.params['regime']} in force")
            elif what == "end":
                cs.active = False
                self._note(day, "control", f"{c.id}: ended")
            elif what == "revert":
                selective.remove(ch)
                self._selective_params(cs, selective)
                self._note(day, "change", f"{c.id}: regime change for "
                           f"{len(ch.buyers) or ','.join(ch.destinations)}"
                           f"{' buyers' if ch.buyers else ''} ends")
            else:
                if ch.buyers or ch.destinations:
                    selective.append(ch)
                    self._selective_params(cs, selective)
                else:
                    cs.params.update(ch.params)
                who = (f" for {len(ch.buyers)} buyers" if ch.buyers else
                       f" for {','.join(ch.destinations)}" if ch.destinations else "")
                self._note(day, "change", f"{c.id}: regime change{who}")
            self.apply(cs)

    @staticmethod
    def _selective_params(cs: _ControlState, selective: list) -> None:
        """The per-buyer and per-destination overrides from the selective changes in force
        (in the order they started; a later one overrides an earlier one)."""
        cs.buyer_params = {}
        cs.dest_params = {}
        for ch in selective:
            for b in ch.buyers:
                cs.buyer_params.setdefault(b, {}).update(ch.params)
            for d in ch.destinations:
                cs.dest_params.setdefault(d, {}).update(ch.params)

    def _truce_process(self, truce):
        m = self.model
        rng = m.streams.generator(("truce",))
        day = m.day_of(truce.start)
        if day >= m.horizon:
            return
        yield from self._wait_until(day)
        states = [self.controls[cid] for cid in truce.suspends]
        for cs in states:
            cs.suspended = True
            self.apply(cs)
        self._note(day, "truce", f"truce: {', '.join(truce.suspends)} suspended")
        day += truce.duration_days
        while day < m.horizon:
            yield from self._wait_until(day)
            u = rng.random()
            if u < truce.reinstate:
                outcome = "reinstate"
            elif u < truce.reinstate + truce.extend:
                outcome = "extend"
            else:
                outcome = "escalate"
            self.truce_outcomes.append(outcome)
            if outcome == "extend":
                self._note(day, "truce", "truce extended")
                day += truce.extension_days
                continue
            for cs in states:
                if outcome == "escalate":
                    cs.params.update(truce.escalation)
                cs.suspended = False
                self.apply(cs)
            self._note(day, "truce", "truce expired: controls " +
                       ("reinstated" if outcome == "reinstate" else "escalated"))
            return

    def _tariff_process(self, t):
        m = self.model
        net = m.network
        lanes = [l for l in m.lanes
                 if net.nodes[l.spec.src].country == t.origin
                 and (t.destination is None or net.nodes[l.spec.dst].country == t.destination)
                 and net.nodes[l.spec.src].country != net.nodes[l.spec.dst].country
                 and (t.materials is None or l.material in t.materials)]
        day = m.day_of(t.start)
        if day >= m.horizon:
            return
        yield from self._wait_until(day)
        for l in lanes:
            l.tariff += t.rate
        if self.sourcing is not None:
            self.sourcing.tariffs_changed(lanes, m.now)
        self._note(day, "tariff", f"tariff {t.rate:.0%} {t.origin}->{t.destination or 'all'}")
        if t.end is not None:
            end = m.day_of(t.end)
            if end < m.horizon:
                yield from self._wait_until(end)
                for l in lanes:
                    l.tariff -= t.rate
                if self.sourcing is not None:
                    self.sourcing.tariffs_changed(lanes, m.now)
                self._note(end, "tariff", f"tariff {t.rate:.0%} {t.origin}->{t.destination or 'all'} ends")

    def _outage_process(self, o, i):
        m = self.model
        prods = [p for p in m.productions if p.node.id == o.node]
        if not prods:
            raise ScenarioError(f"node {o.node!r} has no production to interrupt", where="outages",
                                field="node")
        if o.mtbf_days is None:
            day = m.day_of(o.start)
            if day >= m.horizon:
                return
            yield from self._wait_until(day)
            self._set_down(prods, +1)
            self._note(day, "outage", f"outage {o.node} ({o.duration_days:g} d)")
            yield self._sleep(o.duration_days)
            self._set_down(prods, -1)
            return
        rng = m.streams.generator(("outage", o.node, i))
        while True:
            yield self._sleep(rng.exponential(o.mtbf_days))
            self._set_down(prods, +1)
            yield self._sleep(rng.exponential(o.mttr_days))
            self._set_down(prods, -1)

    def _set_down(self, prods, delta: int) -> None:
        now = self.model.now
        for p in prods:
            p.set_down(delta, now)

    def _closure_due(self, lc) -> None:
        m = self.model
        lane = next(l for l in m.lanes if l.id == lc.lane)
        day = m.day_of(lc.start)
        if day >= m.horizon:
            return
        now = m.now
        if day > now:
            m.at(day - now, PRIORITY_POLICY, self._close_lane, (lc, lane))
        else:
            self._close_lane((lc, lane))

    def _close_lane(self, value) -> None:
        lc, lane = value
        m = self.model
        lane.closed += 1
        if lc.queued_orders == "reroute":
            self._drop_backlog(lane)
        m.lanes_changed([lane.dst], m.now)
        self._note(m.day_of(lc.start), "closure", f"lane closed {lane.id}")
        m.at(lc.duration_days, PRIORITY_POLICY, self._reopen_lane, lane)

    def _reopen_lane(self, lane) -> None:
        lane.closed -= 1
        self.model.lanes_changed([lane.dst], self.model.now)

    # -- applying controls --------------------------------------------------------------------
    def apply(self, cs: _ControlState) -> None:
        """Recompute ban flags and gates of the lanes a control can touch, and its capacity
        effect on foreign plants."""
        c = cs.spec
        if c.capacity_nodes and cs.in_force != cs.capacity_on:
            cs.capacity_on = cs.in_force
            now = self.model.now
            for p in self.model.productions:
                if p.node.id in c.capacity_nodes:
                    if cs.in_force:
                        p.add_factor(c.capacity_factor, now)
                    else:
                        p.remove_factor(c.capacity_factor, now)
        touched = {l.index: l for l in cs.direct_lanes + cs.extra_lanes}
        for lane in touched.values():
            self._refresh_lane(lane)
        m = self.model
        m.lanes_changed({l.dst for l in touched.values()}, m.now)

    def _refresh_lane(self, lane) -> None:
        banned = False
        gated = False
        buyer = lane.spec.dst
        country = lane.dst.node.country
        for cs in self.controls.values():
            if not cs.in_force:
                continue
            direct = lane.index in cs.direct_set
            if direct:
                regime = cs.params_for(buyer, country)["regime"]
                if REGIME_TABLE[regime].closes_lane:
                    banned = True
                else:
                    gated = True
            elif lane.index in cs.extra_set:
                gated = True
        held = False
        if not gated:
            for cl in self._lane_clearance.get(lane.index, ()):
                if cl.active:
                    held = True
        was = lane.banned
        lane.banned = banned
        # a lane only a clearance hold covers skips the controls' checks
        lane.gate = self.gate if gated else self._clearance_gate if held else None
        if banned and not was:
            self._drop_backlog(lane)

    def _drop_backlog(self, lane) -> None:
        """Cancel the orders queued at the supplier for *lane* (the buyer re-routes them)."""
        self.model.drop_queued(lane, self.model.now)

    def gate(self, lane, qty: float, prov, now: float, shipped_at: float | None = None,
             cleared: tuple = ()) -> None:
        """Decide what happens to a shipment on a gated lane (called by the engine).

        *shipped_at* is when the goods left the supplier (differs from *now* when a denied
        shipment is re-applied). *cleared* holds the ids of the controls whose licence the
        shipment has already obtained (a shipment released by a granted licence comes back
        through here for the other controls). A control whose ``licence_scope`` is not
        ``"shipment"`` lets the shipment pass under a valid licence of its scope, or makes it
        wait on the scope's pending application (filing one if there is none); per-shipment
        reviews are drawn after every scoped licence is in hand, in the order of the
        controls."""
        if shipped_at is None:
            shipped_at = now
        acc = None
        for step in self._lane_steps.get(lane.index, ()):
            cs = step.state
            if not cs.active or cs.suspended:           # not in force
                continue
            if cs.buyer_params or cs.dest_params:
                p = cs.params_for(lane.spec.dst, lane.dst.node.country)
            else:
                p = cs.params
            if step.by_origin:
                share = prov[step.origin_index] if step.origin_index >= 0 else 0.0
                if share * step.content_share <= p["de_minimis"]:
                    continue
            if acc is None:
                acc = [None, None, None]
            # the regime's decision (sim.scenario.REGIME_TABLE, DECISIONS): True when it
            # took the shipment (returned it, or made it wait on a licence)
            if DECISIONS[p["regime"]](self, step, p, acc, lane, qty, prov, now, shipped_at,
                                      cleared):
                return
        if acc is None:           # no control in force covers it
            self._release(lane, qty, prov, now, shipped_at)
            return
        quota_controls, reviews, used = acc
        if used is not None:
            for lic in used:
                lic.tonnes += qty
                lic.shipments += 1
                self.decisions.append((now, _USED, lic.cid, lane.index, qty, 0.0))
        denied_by = None
        lapsed = False
        review = 0.0
        if reviews is not None:
            for step, p in reviews:
                r = step.review(p["review_days"])
                ok = step.approval(_STANDARD_UNIFORM) < p["approval_probability"]
                self.licence_log.append((now, step.cid, lane.index, qty, r, ok))
                self.decisions.append((now, _APPLIED, step.cid, lane.index, qty, r))
                self.decisions.append((now + r, _GRANTED if ok else _DENIED, step.cid,
                                       lane.index, qty, r))
                if r > review:
                    review = r
                if not ok and denied_by is None:
                    denied_by = step.state
                elif ok and p["licence_validity_from"] == "application" \
                        and r >= p["licence_validity_days"]:
                    # its validity ran from the filing: granted already expired, so the
                    # shipment is reviewed again when it arrives
                    self.decisions.append((now + r, _EXPIRED, step.cid, lane.index, 0.0,
                                           math.nan))
                    lapsed = True
        if lapsed and denied_by is None:
            self.model.at(review, PRIORITY_ARRIVAL, self._reapply_shipment,
                          (lane, qty, prov, shipped_at, cleared))
            return
        self.model.at(review, PRIORITY_ARRIVAL, self._after_review,
                      (lane, qty, prov, shipped_at, denied_by,
                       tuple(quota_controls) if quota_controls is not None else (), cleared))

    def _after_review(self, value) -> None:
        lane, qty, prov, shipped_at, denied_by, quotas, cleared = value
        now = self.model.now
        if denied_by is not None:
            p = denied_by.params_for(lane.spec.dst, lane.dst.node.country)
            if p["on_denial"] == "requeue" and denied_by.in_force:
                self.gate(lane, qty, prov, now, shipped_at, cleared)
                return
            if p["on_denial"] == "reapply":
                # the goods wait at the exporter; the exporter files again after the delay
                # (if the control is lifted by then, the shipment passes)
                self.model.at(p["reapply_days"], PRIORITY_ARRIVAL, self._reapply_shipment,
                              (lane, qty, prov, shipped_at, cleared))
                return
            self._deny(lane, qty, now, p, denied_by.spec.id)
            return
        for cs in quotas:
            if not self._quota_take(cs, lane, qty, prov, shipped_at):
                return
        self._release(lane, qty, prov, now, shipped_at)

    def _reapply_shipment(self, value) -> None:
        lane, qty, prov, shipped_at, cleared = value
        self.gate(lane, qty, prov, self.model.now, shipped_at, cleared)

    # -- licences of a scope ------------------------------------------------------------------
    def _await_licence(self, step, key, p: dict, entry: tuple, now: float) -> None:
        """Make a shipment wait on the pending application of its licence scope, filing one
        when none is pending."""
        cs = step.state
        app = cs.pending.get(key)
        if app is None:
            app = _Application(step.cid, step.pos, key, entry[0].index)
            cs.pending[key] = app
            app.waiting.append(entry)
            self._file(app, p, now)
        else:
            app.waiting.append(entry)

    def _file(self, app: _Application, p: dict, now: float) -> None:
        """Draw the review time and outcome of an application and schedule its decision."""
        step = self._lane_steps[app.lane][app.pos]
        app.params = p
        r = step.review(p["review_days"])
        ok = step.approval(_STANDARD_UNIFORM) < p["approval_probability"]
        app.filed = now
        tonnes = 0.0
        for e in app.waiting:
            tonnes += e[1]
        self.licence_log.append((now, step.cid, app.lane, tonnes, r, ok))
        # a renewal filed while the licence it renews still runs (refiled after that lapsed,
        # it is an ordinary application of the shipments waiting on it)
        renewal = app.renews is not None and app.renews.until > now
        self.decisions.append((now, _RENEWAL if renewal else _APPLIED, step.cid, app.lane,
                               tonnes, r))
        self.model.at(r, PRIORITY_ARRIVAL, self._decide, (app, ok, r))

    def _decide(self, value) -> None:
        """An application's review ends: grant a licence and release what waits on it, or
        act on the denial (cancel, requeue at once, or re-apply after ``reapply_days``)."""
        app, ok, r = value
        now = self.model.now
        cid = app.cid
        cs = self.controls[cid]
        tonnes = 0.0
        for e in app.waiting:
            tonnes += e[1]
        if ok:
            p = app.params
            start = app.filed if p["licence_validity_from"] == "application" else now
            old = app.renews
            if old is not None and old.until > start:
                start = old.until       # a renewal runs on from the licence it renews
            until = start + p["licence_validity_days"]
            if until <= now:
                # granted already expired (its validity ran from the filing): file again
                self.decisions.append((now, _GRANTED, cid, app.lane, tonnes, r))
                self.decisions.append((now, _EXPIRED, cid, app.lane, 0.0, math.nan))
                if cs.in_force:
                    self._file(app, self._params_now(app), now)
                else:
                    del cs.pending[app.key]
                    self._release_waiting(app, now, None)
                return
            del cs.pending[app.key]
            self.decisions.append((now, _GRANTED, cid, app.lane, tonnes, r))
            lic = _Licence(cid, app.lane, now, until)
            if old is not None and old.until > now:
                old.renewal = lic       # takes over under the scope key when old lapses
            else:
                cs.licences[app.key] = lic
            self.granted.append(lic)
            if p["renew_before_days"] > 0:
                self.model.at(max(0.0, until - p["renew_before_days"] - now), PRIORITY_ARRIVAL,
                              self._renew, (cid, app.key, lic, app.lane, app.pos))
            self._release_waiting(app, now, lic)
            return
        self.decisions.append((now, _DENIED, cid, app.lane, tonnes, r))
        if app.renews is not None and app.renews.until > now:
            # renewal denied while the old licence runs: nothing waits; when it lapses the
            # next shipment in the scope applies as without renewal
            del cs.pending[app.key]
            return
        if not cs.in_force:             # lifted during the review: no licence needed now
            del cs.pending[app.key]
            self._release_waiting(app, now, None)
            return
        mode = app.params["on_denial"]
        if mode == "requeue":
            self._file(app, self._params_now(app), now)
        elif mode == "reapply":
            self.model.at(app.params["reapply_days"], PRIORITY_ARRIVAL, self._refile, app)
        else:
            del cs.pending[app.key]
            for lane, qty, prov, shipped_at, cleared in app.waiting:
                self._deny(lane, qty, now, app.params, cid)

    def _renew(self, value) -> None:
        """``renew_before_days`` before a licence expires: file its renewal if shipments have
        used it, the control is in force, nothing is pending in its scope and the regime now
        in force still licenses that scope with renewal."""
        cid, key, lic, lane_index, pos = value
        if not lic.shipments:
            return                      # unused licences are not renewed
        cs = self.controls[cid]
        if not cs.in_force or key in cs.pending or cs.licences.get(key) is not lic:
            return
        lane = self.model.lanes[lane_index]
        p = cs.params_for(lane.spec.dst, lane.dst.node.country)
        if p["regime"] != "licensing" or p["licence_scope"] != key[0] \
                or p["renew_before_days"] <= 0:
            return
        app = _Application(cid, pos, key, lane_index)
        app.renews = lic
        cs.pending[key] = app
        self._file(app, p, self.model.now)

    def _params_now(self, app: _Application) -> dict:
        lane = self.model.lanes[app.lane]
        return self.controls[app.cid].params_for(lane.spec.dst, lane.dst.node.country)

    def _refile(self, app: _Application) -> None:
        """File a denied application again (with the regime now in force), or let its
        shipments pass if the control has been lifted meanwhile."""
        now = self.model.now
        cs = self.controls[app.cid]
        if not cs.in_force:
            del cs.pending[app.key]
            self._release_waiting(app, now, None)
            return
        self._file(app, self._params_now(app), now)

    def _release_waiting(self, app: _Application, now: float, lic) -> None:
        """Send the shipments that waited on an application on through the gate (the other
        controls, quotas and clearance), marked as cleared of this control."""
        for lane, qty, prov, shipped_at, cleared in app.waiting:
            if lic is not None:
                lic.tonnes += qty
                lic.shipments += 1
                self.decisions.append((now, _USED, lic.cid, lane.index, qty, 0.0))
            self.gate(lane, qty, prov, now, shipped_at, cleared + (app.cid,))
        app.waiting = []

    def tables(self) -> dict:
        """The decision logs as recorded, for :class:`~sim.results.Run` (converted to tables
        only when asked, by :func:`licence_table` and :func:`clearance_table`): the licence
        decisions ``(time, event code, control id, lane index, tonnes, review days)`` with an
        expiry row for each licence granted under a scope (at the end of its validity, with
        the tonnes shipped under it: 0 when it expired unused), and the clearance holds
        ``(arrival, start of testing, end of testing, hold id, lane index, tonnes)``. Empty
        when the scenario gates nothing."""
        if not self._lane_steps and not self._lane_clearance:
            return {}
        expired = [(lic.until, _EXPIRED, lic.cid, lic.lane, lic.tonnes, math.nan)
                   for lic in self.granted]
        ids = [cl.spec.id for cl in self.clearances]
        return {"licence": self.decisions + expired,
                "clearance": [(a, s, e, ids[h], lane, q)
                              for a, s, e, h, lane, q in self.clearance_log]}

    # -- clearance holds ----------------------------------------------------------------------
    def _clearance_process(self, cl: _ClearanceState):
        m = self.model
        h = cl.spec
        day = m.day_of(h.start)
        if day >= m.horizon:
            return
        yield from self._wait_until(day)
        cl.active = True
        self._note(day, "clearance", f"clearance hold {h.id}: consignments tested")
        self._refresh_clearance(cl)
        if h.end is not None:
            end = m.day_of(h.end)
            if end < m.horizon:
                yield from self._wait_until(end)
                cl.active = False
                self._note(end, "clearance", f"clearance hold {h.id}: ended")
                self._refresh_clearance(cl)

    def _refresh_clearance(self, cl: _ClearanceState) -> None:
        for index, held in self._lane_clearance.items():
            if cl in held:
                self._refresh_lane(self.model.lanes[index])

    def _clearance_gate(self, lane, qty: float, prov, now: float) -> None:
        """The gate of a lane no control covers now but a clearance hold does."""
        self._release(lane, qty, prov, now, now)

    def _release(self, lane, qty: float, prov, now: float, shipped_at: float,
                 after: int = 0) -> None:
        """Hand a shipment that passed the controls to the clearance holds in force on its
        lane (from the *after*-th on), one after another, then to :meth:`Model.dispatch`."""
        held = self._lane_clearance.get(lane.index)
        if held is not None:
            for k in range(after, len(held)):
                cl = held[k]
                if cl.active:
                    self._hold(cl, (lane, qty, prov, shipped_at, k + 1), now, now)
                    return
        self.model.dispatch(lane, qty, prov, now, shipped_at)

    def _hold(self, cl: _ClearanceState, entry: tuple, arrived: float, now: float) -> None:
        """Start testing a consignment if a server is free; else it queues (first come,
        first served)."""
        if cl.servers is not None and cl.busy >= cl.servers:
            cl.queue.append((arrived, entry))
            return
        cl.busy += 1
        d = cl.sampler(cl.spec.delay_days)
        self.clearance_log.append((arrived, now, now + d, cl.index, entry[0].index, entry[1]))
        self.model.at(d, PRIORITY_ARRIVAL, self._tested, (cl, entry))

    def _tested(self, value) -> None:
        cl, entry = value
        now = self.model.now
        cl.busy -= 1
        if cl.queue:
            arrived, nxt = cl.queue.popleft()
            self._hold(cl, nxt, arrived, now)
        lane, qty, prov, shipped_at, after = entry
        self._release(lane, qty, prov, now, shipped_at, after)

    def _quota_period(self, cs) -> int:
        start = self.model.day_of(cs.spec.start)
        return math.floor((self.model.now - start) / cs.params["quota_period_days"] + 1e-12)

    def _quota_take(self, cs, lane, qty, prov, shipped_at) -> bool:
        """Let a shipment through if the current period's quota allows; else queue it for the
        next period. A shipment larger than the whole quota passes alone at a period start."""
        period = self._quota_period(cs)
        if period != cs.quota_period:     # a new quota period: nothing used yet
            cs.quota_period = period
            cs.quota_used = 0.0
        quota = cs.params["quota_t"]
        if not cs.quota_queue and (cs.quota_used == 0.0 or cs.quota_used + qty <= quota + 1e-9):
            cs.quota_used += qty
            return True
        if not cs.quota_queue:
            self._schedule_quota_reset(cs, period)
        cs.quota_queue.append((lane, qty, prov, shipped_at))
        return False

    def _schedule_quota_reset(self, cs, period: int) -> None:
        start = self.model.day_of(cs.spec.start)
        next_reset = start + cs.params["quota_period_days"] * (period + 1)
        self.model.at(max(0.0, next_reset - self.model.now), PRIORITY_POLICY, self._quota_reset,
                      cs)

    def _quota_reset(self, cs) -> None:
        now = self.model.now
        cs.quota_period = self._quota_period(cs)
        cs.quota_used = 0.0
        queue, cs.quota_queue = cs.quota_queue, []
        for i, (lane, qty, prov, shipped_at) in enumerate(queue):
            if cs.quota_used == 0.0 or cs.quota_used + qty <= cs.params["quota_t"] + 1e-9:
                cs.quota_used += qty
                self._release(lane, qty, prov, now, shipped_at)
            else:
                cs.quota_queue = queue[i:]
                self._schedule_quota_reset(cs, cs.quota_period)
                break

    def _deny(self, lane, qty: float, now: float, params: dict, cid: str) -> None:
        """A denied shipment goes back to the supplier; the buyer cancels and re-routes."""
        m = self.model
        buyer = lane.dst
        m.return_shipment(lane, qty, now)
        avoid = params.get("avoid_days", 60.0)
        if avoid > 0 and not lane.avoid:
            lane.avoid = True
            m.at(avoid, PRIORITY_POLICY, self._unavoid, lane)
        m.lanes_changed([buyer], now)

    def _unavoid(self, lane) -> None:
        lane.avoid = False
        self.model.lanes_changed([lane.dst], self.model.now)
