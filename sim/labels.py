"""Readable names for what figures and tables show: KPIs, scopes, parameters, policy events,
nodes, materials and countries (one registry, used by every title, axis and legend).

Adding a KPI is one line in :data:`KPIS`: ``"name": ("readable name", "unit")``. Percentages
are stored as fractions; :data:`PERCENT` lists the KPIs drawn x 100. An id without an entry
gets a readable fallback (underscores as spaces, a node by its kind and country), never an
error, so a figure of a new network still draws.

>>> kpi_label("fill_rate", "sector:defense")
'Fill rate, defense (%)'
>>> param_label("nodes.nds_us.initial.ndfeb_magnet")
'US stockpile, initial magnets (t)'
>>> event_label(93.0, "control", "apr_2025 (licensing)", "2025-01-01")
'Export licensing, 4 Apr 2025'
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = [
    "KPIS", "SERIES", "PERCENT", "CATEGORIES", "NODES", "COUNTRIES", "MATERIALS", "CONTROLS",
    "PARAMETERS", "kpi_name", "kpi_unit", "kpi_label", "series_label", "scope_label",
    "node_label", "country_label", "material_label", "param_label", "param_unit",
    "event_label", "date_label", "scenario_label", "raw_ids",
]

# KPI -> (readable name, unit); the unit "%" means a fraction drawn in percent
KPIS: dict[str, tuple[str, str]] = {
    "fill_rate": ("fill rate", "%"),
    "order_fill_rate": ("order fill rate (orders filled completely)", "%"),
    "demand_t": ("demand", "t"),
    "filled_t": ("demand filled from stock", "t"),
    "backordered_t": ("backordered", "t"),
    "lost_t": ("lost sales", "t"),
    "peak_backorders_t": ("peak backorders", "t"),
    "mean_backorders_t": ("mean backorders", "t"),
    "stockout_days": ("stockout days (unmet backlog or lost demand)", "days"),
    "short_order_days": ("days with an order not filled completely", "days"),
    "period_service_level": ("period service level (days without stockout)", "%"),
    "first_shortage_day": ("first shortage", "day of run"),
    "shortage_occurred": ("replications with a shortage", "%"),
    "first_shortage_after_day": ("first shortage after the event", "day of run"),
    "shortage_after_occurred": ("replications with a shortage after the event", "%"),
    "shortage_after_event_day": ("event date of the shortage-after KPI", "day of run"),
    "orders": ("orders", "count"),
    "purchase_cost_usd": ("purchase cost", "USD"),
    "tariff_cost_usd": ("tariff cost", "USD"),
    "holding_cost_usd": ("holding cost", "USD"),
    "truce_outcome": ("truce outcome", ""),
    "truce_extensions": ("truce extensions", "count"),
    "licence_reviews": ("licence reviews", "count"),
    "licence_denials": ("licence denials", "count"),
    "licence_review_days_mean": ("mean licence review time", "days"),
    # derived in the experiments
    "unfilled_t": ("demand not filled", "t"),
    "days_to_first_shortage_after_expiry": ("days from truce expiry to first shortage", "days"),
}
PERCENT = {"fill_rate", "order_fill_rate", "period_service_level", "shortage_occurred",
           "shortage_after_occurred"}
# categorical KPIs: stored code -> label (tables store the label)
CATEGORIES: dict[str, dict[int, str]] = {
    "truce_outcome": {0: "none", 1: "reinstate", 2: "extend", 3: "escalate"},
}
# weekly series families (MonteCarloResults.series)
SERIES: dict[str, tuple[str, str]] = {
    "fill_rate": ("fill rate in the week", "%"),
    "backorders_t": ("backorders at end of week", "t"),
    "net_inventory_t": ("net inventory at end of week", "t"),
    "inventory_t": ("stock on hand at end of week", "t"),
}
# the strategic reserves' KPIs (sim.results.Run.kpi_rows; only for networks with a reserve)
KPIS.update({
    "reserve_released_t": ("released from the strategic reserve", "t"),
    "reserve_purchased_t": ("bought for the strategic reserve", "t"),
    "reserve_purchase_cost_usd": ("strategic reserve purchases", "USD"),
    "reserve_holding_end_t": ("strategic reserve holding at the end", "t"),
})
COUNTRIES = {"CN": "China", "US": "United States", "JP": "Japan", "AU": "Australia",
             "DE": "Germany", "MY": "Malaysia", "EE": "Estonia", "FR": "France", "VN": "Vietnam",
             "KR": "South Korea", "IN": "India", "MM": "Myanmar", "TH": "Thailand",
             "NG": "Nigeria", "EU": "European Union", "GB": "United Kingdom", "CA": "Canada",
             "MX": "Mexico"}
_ADJ = {"CN": "Chinese", "US": "US", "JP": "Japanese", "AU": "Australian", "DE": "German",
        "MY": "Malaysian", "EE": "Estonian", "FR": "French", "VN": "Vietnamese", "KR": "Korean",
        "IN": "Indian", "MM": "Myanmar", "TH": "Thai", "NG": "Nigerian", "EU": "EU"}
MATERIALS = {"concentrate": "concentrate", "hre_concentrate": "heavy-RE concentrate",
             "ndpr_oxide": "NdPr oxide", "dytb_oxide": "Dy/Tb oxide",
             "smgdy_oxide": "Sm/Gd oxide", "ndfeb_magnet": "NdFeB magnets",
             "ndfeb_hre_magnet": "high-temperature magnets", "smco_magnet": "SmCo magnets"}
# short names of the nodes of the shipped networks
NODES = {
    "mine_cn": "Chinese mines", "mine_mm": "Myanmar mines", "mine_us": "Mountain Pass mine",
    "mine_au": "Australian mines", "mine_ng": "African mines", "mine_th": "SE Asian mines",
    "mine_row": "Other mines", "sep_cn": "Chinese refiners", "sep_my": "Lynas Malaysia",
    "sep_us_mp": "MP separation", "sep_us_ef": "Energy Fuels", "sep_ee": "Silmet (EE)",
    "sep_fr": "Solvay (FR)", "sep_au": "Iluka refinery", "mag_cn": "Chinese magnet makers",
    "mag_jp": "Japanese magnet makers", "mag_vn": "Shin-Etsu Vietnam", "mag_de": "VAC (DE)",
    "mag_ee": "Magnequench (EE)", "mag_us_mp": "MP magnets", "mag_us_other": "Other US magnets",
    "mag_us_smco": "US SmCo makers", "cn_auto": "Chinese auto", "cn_electronics":
    "Chinese electronics", "cn_wind": "Chinese wind", "us_auto": "US auto", "us_electronics":
    "US electronics", "eu_auto": "EU auto", "eu_electronics": "EU electronics",
    "wind_row": "Wind outside China", "jp_auto": "Japanese auto", "kr_electronics":
    "Korean electronics", "in_auto": "Indian auto", "us_def_aircraft": "US military aircraft",
    "us_def_naval": "US naval", "us_def_munitions": "US munitions", "nds_us": "US stockpile",
    "row_industry": "Other importers (Mexico and the rest)",
    # teaching network
    "magnets_jp": "Japanese magnet maker",
    "auto_us": "US car maker", "defense_us": "US defense prime",
}
_KINDS = {"mine": "mine", "processor": "refiner", "magnet_maker": "magnet maker",
          "stockpile": "stockpile", "manufacturer": "manufacturer", "defense_user": "defense user"}
# policy controls of the shipped scenarios -> short readable names
CONTROLS = {
    "apr_2025": "Export licensing",
    "oct_2025_elements": "Licensing of 5 more elements",
    "oct_2025_extraterritorial": "Extraterritorial licensing",
    "oct_2025_technology": "Technology export ban",
}
# parameter paths (after any "scenario."/"network." prefix) with a fixed label and unit
PARAMETERS: dict[str, tuple[str, str]] = {
    "truce.renewal_probability": ("truce renewal", "probability"),
    "truce.outcomes.extend": ("truce extension at expiry", "probability"),
    "truce.outcomes.reinstate": ("controls reinstated at expiry", "probability"),
    "truce.outcomes.escalate": ("escalation at expiry", "probability"),
    "truce.duration_days": ("truce length", "days"),
}
_PARAM_FIELDS = {
    "initial": ("initial", "t"), "capacity_t_per_year": ("capacity", "t/yr"),
    "approval_probability": ("licence approval", "probability"),
    "review_days": ("licence review time", "days"), "share": ("share of orders", "share"),
    "rate": ("tariff rate", "ad valorem"), "factor": ("factor", "x"),
    "duration_days": ("duration", "days"), "avoid_days": ("days avoided after denial", "days"),
    "reorder_point": ("reorder point", "t"), "order_up_to": ("order-up-to level", "t"),
    "safety_days": ("safety stock", "days"), "target_days": ("target cover", "days"),
    "rate_t_per_year": ("demand", "t/yr"),
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _human(raw: str) -> str:
    return str(raw).replace("_", " ").strip()


def kpi_name(kpi: str) -> str:
    """The readable name of a KPI (lower case)."""
    return KPIS.get(kpi, (_human(kpi), ""))[0]


def kpi_unit(kpi: str, *, difference: bool = False) -> str:
    """The unit of a KPI as drawn ("%" for fractions, "percentage points" for differences)."""
    unit = KPIS.get(kpi, ("", ""))[1]
    if difference and unit == "%":
        return "percentage points"
    return unit


def country_label(code: str) -> str:
    """``"CN"`` -> ``"China"``."""
    return COUNTRIES.get(code, code)


def material_label(mat: str) -> str:
    """``"ndfeb_hre_magnet"`` -> ``"high-temperature magnets"``."""
    return MATERIALS.get(mat, _human(mat))


def node_label(node: str, network=None) -> str:
    """A short readable name of a node: the registry's, else (given the network) its kind and
    country, else the id with spaces."""
    if node in NODES:
        return NODES[node]
    n = getattr(network, "nodes", {}).get(node) if network is not None else None
    if n is not None:
        kind = _KINDS.get(n.kind, _human(n.kind))
        return f"{_ADJ.get(n.country, n.country)} {kind} ({_human(node)})"
    return _human(node)


def scope_label(scope: str) -> str:
    """``"sector:defense"`` -> ``"defense"``; ``"node:us_auto"`` -> ``"US auto"``;
    ``"country:CN"`` -> ``"China"``; ``"network"`` -> ``"all users"``."""
    scope = str(scope)
    if scope in ("network", ""):
        return "all users"
    if scope == "civil":
        return "civil (all but defense)"
    if scope == "policy":
        return "policy"
    kind, _, name = scope.partition(":")
    if kind == "sector":
        return "civil (all but defense)" if name == "civil" else name
    if kind == "country":
        return country_label(name)
    if kind == "node":
        return node_label(name)
    if kind == "stock":
        node, _, mat = name.partition("/")
        return f"{node_label(node)}, {material_label(mat)}"
    return _human(scope)


def kpi_label(kpi: str, scope: str | None = None, *, difference: bool = False,
              unit: bool = True) -> str:
    """Axis label of a KPI: ``"Fill rate, defense (%)"``; a column ``"kpi|scope"`` may be given
    as *kpi*. *difference*: a paired difference (percent becomes percentage points)."""
    if scope is None and "|" in kpi:
        kpi, scope = kpi.split("|", 1)
    text = kpi_name(kpi)
    if difference:
        text = "difference in " + text
    if scope:
        text += f", {scope_label(scope)}"
    u = kpi_unit(kpi, difference=difference)
    return _cap(text) + (f" ({u})" if u and unit else "")


def series_label(name: str) -> str:
    """Axis label of a weekly series ``"family|scope"`` (the scope is left out)."""
    fam = name.split("|", 1)[0]
    text, u = SERIES.get(fam, (_human(fam), ""))
    return _cap(text) + (f" ({u})" if u else "")


def param_unit(path: str) -> str:
    """The unit of a swept parameter, from the registry or from its last field."""
    lab = _param_parts(path)
    return lab[1]


def _param_parts(path: str) -> tuple[str, str]:
    parts = str(path).split(".")
    if parts[0] in ("scenario", "network") and len(parts) > 1:
        parts = parts[1:]
    key = ".".join(parts)
    if key in PARAMETERS:
        return PARAMETERS[key]
    if parts[0] == "nodes" and len(parts) >= 3:
        who = node_label(parts[1])
        if parts[2] == "initial" and len(parts) == 4:
            return f"{who}, initial {material_label(parts[3])}", "t"
        if parts[2] == "stock" and len(parts) >= 5:
            field, unit = _PARAM_FIELDS.get(parts[-1], (_human(parts[-1]), ""))
            return f"{who}, {field} {material_label(parts[3])}", unit
        if parts[2] in ("production", "demand") and len(parts) >= 5:
            field, unit = _PARAM_FIELDS.get(parts[-1], (_human(parts[-1]), ""))
            return f"{who}, {material_label(parts[3])} {field}", unit
        field, unit = _PARAM_FIELDS.get(parts[-1], (_human(parts[-1]), ""))
        return f"{who}, {field}", unit
    if parts[0] == "controls" and len(parts) >= 3:
        name = CONTROLS.get(parts[1], _human(parts[1]))
        field, unit = _PARAM_FIELDS.get(parts[-1], (_human(parts[-1]), ""))
        return f"{name}: {field}", unit
    if parts[0] == "lanes" and len(parts) >= 3:
        lane = parts[1]
        m = re.match(r"(.+)->(.+):(.+)", lane)
        who = f"{node_label(m[1])} to {node_label(m[2])}" if m else f"lane {lane}"
        field, unit = _PARAM_FIELDS.get(parts[-1], (_human(parts[-1]), ""))
        return f"{who}: {field}", unit
    if parts[0] in ("tariffs", "outages", "lane_closures", "demand_surges") and len(parts) >= 3:
        field, unit = _PARAM_FIELDS.get(parts[-1], (_human(parts[-1]), ""))
        return f"{_human(parts[0])[:-1]} {parts[1]}: {field}", unit
    field, unit = _PARAM_FIELDS.get(parts[-1], (" ".join(_human(p) for p in parts), ""))
    return field, unit


def param_label(path: str, *, unit: bool = True) -> str:
    """Readable label of a dotted parameter path with its unit:
    ``"nodes.nds_us.initial.ndfeb_magnet"`` -> ``"US stockpile, initial magnets (t)"``."""
    text, u = _param_parts(path)
    text = text.replace("initial NdFeB magnets", "initial magnets")
    return _cap(text) + (f" ({u})" if u and unit else "")


def date_label(d: _dt.date) -> str:
    """``4 Apr 2025`` (day without a leading zero)."""
    return f"{d.day} {d:%b %Y}"


_TARIFF = re.compile(r"tariff (\S+) (\w+)(?:->(\w+))?( ends)?")


def event_label(day: float, kind: str, text: str, start=None) -> str:
    """A policy event ``(day, kind, text)`` as it reads in a figure:
    ``"Export licensing, 4 Apr 2025"``, ``"Truce begins, 10 Nov 2025"``. *start*: the date
    of day 0 (date or ISO text; without it no date is appended)."""
    text = str(text)
    name = None
    if kind == "truce":
        low = text.lower()
        if "start" in low or "suspended" in low:
            name = "Truce begins"
        elif "extended" in low:
            name = "Truce extended"
        elif "expir" in low:
            name = "Truce expires"
        else:
            name = "Truce: " + low.split(":", 1)[-1].strip()
    elif kind in ("control", "change"):
        cid = re.split(r"[ :(]", text, maxsplit=1)[0]
        cname = CONTROLS.get(cid, _cap(_human(cid)))
        if kind == "change":
            name = f"{cname}: rules change" + (" for " + text.rsplit(" for ", 1)[1]
                                               if " for " in text else "")
        elif "ended" in text:
            name = f"{cname} ends"
        else:
            name = cname
    elif kind == "tariff":
        m = _TARIFF.match(text)
        if m:
            who = f"{_ADJ.get(m[3], m[3])} tariff" if m[3] else "Tariff"
            name = f"{who} {m[1]} on {country_label(m[2])}" + (" ends" if m[4] else "")
    elif kind == "outage":
        m = re.match(r"outage (\S+)(.*)", text)
        if m:
            name = f"Outage, {node_label(m[1])}{m[2]}"
    elif kind == "closure":
        m = re.match(r"lane closed (.+)->(.+):(.+)", text)
        if m:
            name = f"Lane closed, {node_label(m[1])} to {node_label(m[2])}"
    elif kind == "surge":
        name = _cap(text)
    if name is None:
        name = _cap(_human(text))
    if start is None:
        return name
    if not isinstance(start, _dt.date):
        start = _dt.date.fromisoformat(str(start)[:10])
    return f"{name}, {date_label(start + _dt.timedelta(days=float(day)))}"


def scenario_label(name: str) -> str:
    """A scenario name as it reads in a legend (names are the users' own: kept as they are)."""
    return str(name)


_RAW = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b|\w+\|\w+|\b(?:sector|node|country):\w+")


def raw_ids(text: str) -> list[str]:
    """Identifiers left raw in *text* (``snake_case`` words, ``kpi|scope``, ``sector:x``): what
    a registry label should have replaced (used by the tests of the figures)."""
    return _RAW.findall(str(text))
