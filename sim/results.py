"""The result of one replication: recorded data, KPIs, daily series, balances, and saving.

:class:`Run` holds only numpy arrays and plain values (it pickles cheaply, so Monte Carlo
workers can return it), built by :meth:`Run.from_model` at the end of a run. Daily series and
KPIs are computed on request, with numpy, from the change records of the engine.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import metrics
from .engine import (
    REC_BACKLOG_DROP,
    REC_CANCELLED,
    REC_CONSUMED,
    REC_ORDER_IN,
    REC_ORDERED,
    REC_PRODUCED,
    REC_RECEIVED,
    REC_RETURNED,
    REC_SHIPPED,
    records_array,
)

__all__ = ["Run", "DemandRecord", "StockRecord", "LaneRecord", "write_atomic", "package_versions"]


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass
class DemandRecord:
    """Customer demand of one (node, material) and how it was served."""

    node: str
    material: str
    sector: str
    country: str
    lost: bool
    T: np.ndarray                # order times (days)
    D: np.ndarray                # order sizes (t)
    level_before: np.ndarray     # stock level (net inventory if backorders) before each order
    filled: np.ndarray           # filled from stock on arrival of each order
    daily_level: np.ndarray      # end-of-day level (net inventory; floored at 0 for lost sales)

    @cached_property
    def daily_backorders(self) -> np.ndarray:
        """End-of-day backorder level (computed once: every KPI scope holding this stream
        reads it; read-only, so no caller can change the cached copy)."""
        return _read_only(np.maximum(-self.daily_level, 0.0))

    @cached_property
    def daily_on_hand(self) -> np.ndarray:
        """End-of-day stock on hand (read-only)."""
        return _read_only(np.maximum(self.daily_level, 0.0))


@dataclass
class StockRecord:
    """Change log and final state of one stock."""

    node: str
    material: str
    kind: str
    country: str
    sector: str
    initial: float
    final_on_hand: float
    final_on_order: float
    final_backlog: float
    log: np.ndarray              # (n, 3): time, code, quantity
    price: float
    holding_rate: float
    is_demand: bool


@dataclass
class LaneRecord:
    """Shipments of one lane."""

    id: str
    src: str
    dst: str
    material: str
    price: float
    log: np.ndarray              # (n, 4): shipped time, quantity, arrival time, tariff rate
    in_transit_final: float


_COST_KPIS = ("purchase_cost_usd", "tariff_cost_usd", "holding_cost_usd")
# +1 for flows into on-hand stock, -1 for flows out, 0 for order bookkeeping (by record code)
_SIGN = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def _rows(records, width: int) -> np.ndarray:
    """A flat list of change records as an (n, width) float array (arrays pass through)."""
    if isinstance(records, np.ndarray):
        return records.reshape(-1, width)
    return records_array(records, width)


def _count_before_day_ends(t: np.ndarray, ndays: int) -> np.ndarray:
    """For sorted times *t* in ``[0, ndays)``: how many are before the end of each day,
    ``searchsorted(t, [1, 2, ..., ndays])``, in one pass instead of a search per day."""
    per_day = np.bincount(t.astype(np.int64), minlength=ndays)
    return np.cumsum(per_day[:ndays])


def _daily(t: np.ndarray, q: np.ndarray, ndays: int) -> np.ndarray:
    if len(t) == 0:
        return np.zeros(ndays)
    idx = np.minimum(np.floor(t).astype(np.int64), ndays - 1)
    return np.bincount(idx, weights=q, minlength=ndays)[:ndays]


@dataclass
class Run:
    """One replication's result. See :mod:`sim.metrics` for the KPI definitions."""

    network_name: str
    network_digest: str
    scenario_name: str
    scenario_digest: str
    seed: int
    replication: int
    start: _dt.date
    horizon: float
    shortage_from: float
    demand: list[DemandRecord]
    stocks: list[StockRecord]
    lanes: list[LaneRecord]
    production: list[tuple[str, str, np.ndarray, float]]    # node, material, log, final wip
    policy_events: list[tuple[float, str, str]]
    truce_outcomes: list[str]
    licences: np.ndarray          # (n, 3): time, review days, approved
    stats: dict = field(default_factory=dict)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_model(cls, model) -> "Run":
        """Collect the recorded data of a finished :class:`~sim.engine.Model`."""
        H = model.horizon
        ndays = int(math.ceil(H))
        sc = model.scenario
        shortage_from = model.day_of(sc.shortage_after) if sc.shortage_after else 0.0
        demand = []
        for st in model.demand_stocks:
            T, D, C = st.arrays
            n = len(T)
            ep = _rows(st.epochs, 3)
            ep_t, ep_k, ep_L = ep[:, 0], ep[:, 1].astype(np.int64), ep[:, 2]
            # Epoch j (a level L_j set before order k_j) covers orders k_j .. k_{j+1} - 1: the
            # k_j start at 0 and never decrease, so repeating each epoch's values over its
            # orders is the lookup "last epoch with k_j <= k" without a search
            in_epoch = np.diff(ep_k, append=n)
            lev = np.repeat(ep_L, in_epoch) - (C[:n] - np.repeat(C[ep_k], in_epoch))
            if st.lost:
                lev = np.maximum(lev, 0.0)
            filled = np.clip(lev, 0.0, D)
            # at the end of day d (time min(d + 1, H)): orders and epochs before it; for times
            # t >= 0 (all orders and epochs are within [0, H)), t < d + 1 exactly when
            # floor(t) <= d, so a running count per day replaces two sorted searches
            kb = _count_before_day_ends(T, ndays)
            eb = _count_before_day_ends(ep_t, ndays) - 1
            daily = ep_L[eb] - (C[kb] - C[ep_k[eb]])
            if st.lost:
                daily = np.maximum(daily, 0.0)
            demand.append(DemandRecord(st.node.id, st.material, st.node.sector, st.node.country,
                                       st.lost, T, D, lev, filled, daily))
        stocks = []
        for st in model.stocks.values():
            if st.is_demand:
                final = max(st.level_before(st.k_next), 0.0)
                backlog = max(-st.level_before(st.k_next), 0.0) if not st.lost else 0.0
            else:
                final = st.on_hand
                backlog = st.backlog_qty
            log = st.log_array if st.log_array is not None else _rows(st.log, 3)
            stocks.append(StockRecord(st.node.id, st.material, st.node.kind, st.node.country,
                                      st.node.sector, st.initial, final, st.on_order, backlog, log,
                                      st.price, st.node.holding_cost_rate, st.is_demand))
        lanes = [LaneRecord(l.id, l.spec.src, l.spec.dst, l.material, l.price,
                            _rows(l.log, 4), l.in_transit)
                 for l in model.lanes]
        production = [(p.node.id, p.out.material, _rows(p.log, 3), p.wip)
                      for p in model.productions]
        pol = model.policy
        lic = np.asarray([(t, r, float(ok)) for t, _c, _l, _q, r, ok in pol.licence_log],
                         dtype=float).reshape(-1, 3)
        return cls(
            network_name=model.network.name, network_digest=model.network.digest(),
            scenario_name=sc.name, scenario_digest=sc.digest(), seed=model.seed,
            replication=model.replication, start=model.start, horizon=H,
            shortage_from=shortage_from, demand=demand, stocks=stocks, lanes=lanes,
            production=production,
            policy_events=[(e.day, e.kind, e.label) for e in pol.events],
            truce_outcomes=list(pol.truce_outcomes), licences=lic,
            stats={"build_seconds": model.build_seconds, "run_seconds": model.run_seconds,
                   "events": model.events_processed})

    # -- KPIs -------------------------------------------------------------------------------
    @property
    def ndays(self) -> int:
        """Number of (possibly partial) days in the run."""
        return int(math.ceil(self.horizon))

    def date_of(self, day: float) -> _dt.date:
        """Calendar date of a simulation day."""
        return self.start + _dt.timedelta(days=math.floor(day))

    @cached_property
    def _stream_kpis(self) -> list[dict]:
        return [metrics.stream_kpis(d, self.shortage_from, self.horizon) for d in self.demand]

    def kpi_rows(self) -> list[tuple[str, str, float]]:
        """All KPIs as ``(kpi, scope, value)`` tuples (fast; no pandas)."""
        return self._kpi_rows

    @cached_property
    def _kpi_rows(self) -> list[tuple[str, str, float]]:
        rows: list[tuple[str, str, float]] = []
        per = self._stream_kpis
        groups: dict[str, list[int]] = {"network": list(range(len(self.demand)))}
        civil = [i for i, d in enumerate(self.demand) if d.sector != "defense"]
        if civil and len(civil) < len(self.demand):
            groups["civil"] = civil          # every sector but defense
        for i, d in enumerate(self.demand):
            groups.setdefault(f"sector:{d.sector}", []).append(i)
            groups.setdefault(f"country:{d.country}", []).append(i)
            groups.setdefault(f"node:{d.node}", []).append(i)
        done: dict[tuple[int, ...], dict] = {}     # scopes with the same streams share KPIs
        for scope, idx in groups.items():
            key = tuple(idx)
            k = done.get(key)
            if k is None:
                if len(idx) == 1:
                    k = per[idx[0]]
                else:
                    k = metrics.group_kpis([self.demand[i] for i in idx],
                                           [per[i] for i in idx], self.horizon)
                done[key] = k
            for name in metrics.KPI_NAMES:
                if name in k:
                    rows.append((name, scope, float(k[name])))
        rows += self._cost_rows()
        outcome = self.truce_outcomes[-1] if self.truce_outcomes else "none"
        rows.append(("truce_outcome", "policy", float(metrics.TRUCE_OUTCOME_CODES[outcome])))
        rows.append(("truce_extensions", "policy", float(self.truce_outcomes.count("extend"))))
        rows.append(("licence_reviews", "policy", float(len(self.licences))))
        rows.append(("licence_denials", "policy",
                     float((self.licences[:, 2] == 0).sum()) if len(self.licences) else 0.0))
        rows.append(("licence_review_days_mean", "policy",
                     float(self.licences[:, 1].mean()) if len(self.licences) else 0.0))
        return rows

    def _cost_rows(self) -> list[tuple[str, str, float]]:
        node_info = {s.node: (s.country, s.sector) for s in self.stocks}
        # per node first (one dict update per lane or stock), then per scope (once per node)
        per_node: dict[str, list[float]] = {}     # node -> [purchase, tariff, holding]
        for l in self.lanes:
            acc = per_node.setdefault(l.dst, [0.0, 0.0, 0.0])
            if len(l.log):
                qty, rate = l.log[:, 1], l.log[:, 3]
                value = float(qty.sum()) * l.price
                acc[0] += value
                acc[1] += float(qty @ rate) * l.price
        demand = {(d.node, d.material): d for d in self.demand}
        for s in self.stocks:
            acc = per_node.setdefault(s.node, [0.0, 0.0, 0.0])
            acc[2] += self.stock_days(s, demand) * s.price * s.holding_rate / 365.0
        out: dict[tuple[str, str], float] = {}
        buyers = {l.dst for l in self.lanes}
        for node, values in per_node.items():
            country, sector = node_info[node]
            scopes = ("network", f"country:{country}", f"node:{node}") + \
                ((f"sector:{sector}",) if sector else ())
            for kpi, value in zip(_COST_KPIS, values):
                if kpi != "holding_cost_usd" and node not in buyers:
                    continue          # purchase and tariff costs are reported for buyers only
                for scope in scopes:
                    out[(kpi, scope)] = out.get((kpi, scope), 0.0) + value
        return [(k, scope, v) for (k, scope), v in sorted(out.items())]

    def stock_days(self, s: StockRecord, demand: dict | None = None) -> float:
        """Integral of the stock on hand over the run (tonne-days), exact between changes
        (*demand*: the demand records by (node, material), when the caller has them)."""
        if s.is_demand:
            if demand is not None:
                d = demand[(s.node, s.material)]
            else:
                d = next(d for d in self.demand if d.node == s.node and d.material == s.material)
            return float(d.daily_on_hand.sum())
        t, c, q = s.log[:, 0], s.log[:, 1], s.log[:, 2]
        sign = _SIGN[c.astype(np.int64)]
        return float(s.initial * self.horizon + (sign * q * (self.horizon - t)).sum())

    def kpis(self):
        """All KPIs as a tidy :class:`pandas.DataFrame` with columns kpi, scope, value, date,
        scenario, seed, replication."""
        import pandas as pd

        rows = self.kpi_rows()
        df = pd.DataFrame(rows, columns=["kpi", "scope", "value"])
        is_day = df["kpi"] == "first_shortage_day"
        occurred = {scope: v for k, scope, v in rows if k == "shortage_occurred"}
        df["date"] = [self.date_of(v).isoformat() if d and occurred.get(s, 0) else ""
                      for v, d, s in zip(df["value"], is_day, df["scope"])]
        df["scenario"] = self.scenario_name
        df["seed"] = self.seed
        df["replication"] = self.replication
        return df

    def kpi(self, name: str, scope: str = "network") -> float:
        """One KPI value, e.g. ``run.kpi("fill_rate", "sector:defense")``."""
        for k, s, v in self.kpi_rows():
            if k == name and s == scope:
                return v
        scopes = sorted({s for k, s, _ in self.kpi_rows() if k == name})
        raise KeyError(f"no KPI {name!r} for scope {scope!r}; scopes with it: {scopes}")

    # -- series -----------------------------------------------------------------------------
    def daily_on_hand_by_stock(self) -> list[np.ndarray]:
        """End-of-day on-hand quantity of every stock, in the order of ``stocks``."""
        return self._levels[0]

    @cached_property
    def _levels(self):
        nd = self.ndays
        demand_by_key = {(d.node, d.material): d for d in self.demand}
        on_hand, on_order, backlog, flows = [], [], [], []
        for s in self.stocks:
            t, c, q = s.log[:, 0], s.log[:, 1], s.log[:, 2]
            f = {code: _daily(t[c == code], q[c == code], nd) for code in range(9)}
            flows.append(f)
            oo = np.cumsum(f[REC_ORDERED] - f[REC_RECEIVED] - f[REC_CANCELLED])
            on_order.append(oo)
            if s.is_demand:
                d = demand_by_key[(s.node, s.material)]
                on_hand.append(d.daily_on_hand)
                backlog.append(d.daily_backorders)
            else:
                inflow = f[REC_RECEIVED] + f[REC_PRODUCED] + f[REC_RETURNED]
                outflow = f[REC_SHIPPED] + f[REC_CONSUMED]
                on_hand.append(s.initial + np.cumsum(inflow - outflow))
                backlog.append(np.cumsum(f[REC_ORDER_IN] - f[REC_SHIPPED] - f[REC_BACKLOG_DROP]))
        return on_hand, on_order, backlog, flows

    def series(self):
        """Daily series per node and material as a tidy :class:`pandas.DataFrame`.

        Columns: ``day``, ``date``, ``node``, ``material``, ``kind``, ``sector``, ``inventory``
        (end-of-day on hand), ``on_order``, ``backorders`` (customer backorders at demand
        nodes; queued downstream orders at suppliers), ``received``, ``shipped``, ``produced``,
        ``consumed``, ``demand``, ``filled`` (customer demand filled from stock on arrival).
        """
        import pandas as pd

        nd = self.ndays
        on_hand, on_order, backlog, flows = self._levels
        demand_by_key = {(d.node, d.material): d for d in self.demand}
        days = np.arange(nd)
        dates = np.array([np.datetime64(self.start) + np.timedelta64(int(i), "D") for i in days])
        frames = []
        for s, oh, oo, bl, f in zip(self.stocks, on_hand, on_order, backlog, flows):
            d = demand_by_key.get((s.node, s.material))
            frames.append(pd.DataFrame({
                "day": days, "date": dates, "node": s.node, "material": s.material,
                "kind": s.kind, "sector": s.sector, "inventory": oh, "on_order": oo,
                "backorders": bl, "received": f[REC_RECEIVED], "shipped": f[REC_SHIPPED],
                "produced": f[REC_PRODUCED], "consumed": f[REC_CONSUMED],
                "demand": _daily(d.T, d.D, nd) if d else np.zeros(nd),
                "filled": _daily(d.T, d.filled, nd) if d else np.zeros(nd),
            }))
        return pd.concat(frames, ignore_index=True)

    def sector_series(self) -> dict[str, dict[str, np.ndarray]]:
        """Daily demand, filled, backorders and inventory summed by sector (numpy arrays)."""
        nd = self.ndays
        out: dict[str, dict[str, np.ndarray]] = {}
        for d in self.demand:
            s = out.setdefault(d.sector, {k: np.zeros(nd) for k in
                                          ("demand", "filled", "backorders", "inventory")})
            s["demand"] += _daily(d.T, d.D, nd)
            s["filled"] += _daily(d.T, d.filled, nd)
            s["backorders"] += d.daily_backorders
            s["inventory"] += d.daily_on_hand
        return out

    # -- conservation -----------------------------------------------------------------------
    def material_balance(self):
        """Per material: initial + produced = consumed + delivered + final + in transit + lost.

        Returns a :class:`pandas.DataFrame` with one row per material, every term and the
        ``residual`` (left side minus right side). Flows come from the change logs, stocks and
        in-transit from the model's final state, so the identity is a real check of the books.
        """
        import pandas as pd

        mats = sorted({s.material for s in self.stocks})
        rows = []
        for m in mats:
            initial = sum(s.initial for s in self.stocks if s.material == m)
            produced = sum(float(s.log[s.log[:, 1] == REC_PRODUCED, 2].sum())
                           for s in self.stocks if s.material == m)
            consumed = sum(float(s.log[s.log[:, 1] == REC_CONSUMED, 2].sum())
                           for s in self.stocks if s.material == m)
            delivered = 0.0
            for d in self.demand:
                if d.material != m:
                    continue
                if d.lost:
                    delivered += float(d.filled.sum())
                else:
                    final_bo = max(-float(d.daily_level[-1]), 0.0) if len(d.daily_level) else 0.0
                    delivered += float(d.D.sum()) - final_bo
            final = sum(s.final_on_hand for s in self.stocks if s.material == m)
            transit = sum(l.in_transit_final for l in self.lanes if l.material == m)
            rows.append({"material": m, "initial": initial, "produced": produced,
                         "consumed": consumed, "delivered": delivered, "final_stock": final,
                         "in_transit": transit, "lost": 0.0,
                         "residual": initial + produced - consumed - delivered - final - transit})
        return pd.DataFrame(rows)

    # -- printing and saving ------------------------------------------------------------------
    def summary(self) -> str:
        """A short readable summary: fill rate and first shortage by sector."""
        lines = [f"network {self.network_name} | scenario {self.scenario_name} | seed {self.seed}"
                 f" | {self.start} + {self.horizon:g} days"]
        sectors = sorted({d.sector for d in self.demand})
        lines.append(f"{'scope':22s} {'fill rate':>9s} {'type-1':>7s} {'backordered t':>13s} "
                     f"{'stockout d':>10s}  first shortage")
        for scope in ["network"] + [f"sector:{s}" for s in sectors]:
            fr = self.kpi("fill_rate", scope)
            t1 = self.kpi("fill_rate_type1", scope)
            bo = self.kpi("backordered_t", scope) + self.kpi("lost_t", scope)
            so = self.kpi("stockout_days", scope)
            first = self.kpi("first_shortage_day", scope)
            when = self.date_of(first).isoformat() if self.kpi("shortage_occurred", scope) \
                else "none"
            lines.append(f"{scope:22s} {fr:9.1%} {t1:7.1%} {bo:13.1f} {so:10.0f}  {when}")
        if self.truce_outcomes:
            lines.append(f"truce outcomes: {', '.join(self.truce_outcomes)}")
        return "\n".join(lines)

    def manifest(self, extra: dict | None = None) -> dict:
        """What produced this result: inputs' names and hashes, seed, versions, timing."""
        m = {
            "kind": "run",
            "network": self.network_name, "network_sha256": self.network_digest,
            "scenario": self.scenario_name, "scenario_sha256": self.scenario_digest,
            "seed": self.seed, "replication": self.replication, "start": self.start.isoformat(),
            "horizon_days": self.horizon, "versions": package_versions(),
            "stats": self.stats, "created": _dt.datetime.now(_dt.UTC).isoformat(),
            "policy_events": [list(e) for e in self.policy_events],
            "truce_outcomes": self.truce_outcomes,
        }
        m.update(extra or {})
        return m

    def save(self, out_dir: str | Path, *, plots: bool = True, extra_manifest: dict | None = None,
             series_format: str = "csv", extra_files: tuple[str, ...] = ()) -> Path:
        """Write ``summary.csv``, ``series.csv`` (or ``.parquet``), plots and ``manifest.json``.

        Each file is written under a temporary name and renamed into place, ``manifest.json``
        last (an old one is removed first), so an interrupted save never leaves a
        complete-looking result. *extra_files* (already written by the caller, e.g. a network
        map) are listed in the manifest.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stale = out / "manifest.json"
        if stale.exists():
            stale.unlink()     # the folder is incomplete until the new manifest lands
        write_atomic(out / "summary.csv", self.kpis().to_csv(index=False))
        series = self.series()
        if series_format == "parquet":
            tmp = out / ".series.parquet.tmp"
            series.to_parquet(tmp, index=False)
            os.replace(tmp, out / "series.parquet")
        else:
            write_atomic(out / "series.csv", series.to_csv(index=False))
        files = ["summary.csv", f"series.{series_format}", *extra_files]
        if plots:
            from . import plots as _plots
            files += [p.name for p in _plots.plot_run(self, out)]
        man = self.manifest(extra_manifest)
        man["files"] = files
        write_atomic(out / "manifest.json", json.dumps(man, indent=2, default=str))
        return out


def write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def package_versions() -> dict:
    """Versions of Python and the packages that shape the numbers, and which build of the
    engine ran (``"compiled"`` or ``"python"``: the same results, at different speeds)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import engine

    out = {"python": platform.python_version(), "platform": sys.platform,
           "engine": engine.ENGINE}
    for pkg in ("rare-earth-sim", "simpy", "numpy", "networkx", "pandas", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
