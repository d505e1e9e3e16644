"""rare-earth-sim: a discrete-event simulator of the rare-earth supply chain.

The data path is one line: network file -> :class:`~sim.network.Network` (validated graph) ->
:class:`~sim.scenario.Scenario` (policy timeline) -> :class:`~sim.engine.Model` (SimPy) ->
:class:`~sim.records.Recording` (recorded arrays) -> :class:`~sim.results.Run` (series and
KPIs) -> tables and plots; :func:`~sim.simulation.simulate` is that path for one replication.

>>> import sim
>>> run = sim.simulate("teaching", seed=1, horizon_days=365)
>>> run.kpi("fill_rate", "sector:defense") <= 1.0
True
"""

from . import flows  # customs-style tables (sim.flows), usable after a plain `import sim`
from .engine import Model
from .errors import ModelError, NetworkError, RunFailedError, ScenarioError
from .experiment import MonteCarloResults, compare_scenarios, monte_carlo, paired_comparison
from .network import Network, list_networks, load_network, save_network
from .results import Run
from .scenario import Scenario, list_scenarios, load_scenario, with_sourcing
from .simulation import simulate
from .network import with_reserve
from .sweep import SweepResults, sweep
from . import labels, style, tables  # noqa: E402  (registries of names, figure style, tables)

__version__ = "0.1.0"

__all__ = [
    "simulate", "Model", "Run", "Network", "load_network", "save_network", "list_networks",
    "Scenario", "load_scenario", "list_scenarios", "ModelError", "NetworkError", "ScenarioError",
    "RunFailedError",
    "monte_carlo", "MonteCarloResults", "paired_comparison", "compare_scenarios", "sweep",
    "SweepResults", "with_sourcing", "__version__",
    "with_reserve",
]
