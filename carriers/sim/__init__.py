"""The SMSC simulator: ``Simulator`` for tests and benchmarks, ``cli.main`` for ``smsgw sim``."""

from carriers.sim.server import ReceivedSubmit, Simulator, SimulatorConfig, SimulatorStats

__all__ = ["ReceivedSubmit", "Simulator", "SimulatorConfig", "SimulatorStats"]
