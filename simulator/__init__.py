"""simulator: a local, protocol-faithful Upbit exchange (reference in progress)."""

from simulator.clock import Clock, ManualClock, RealClock, ScaledClock
from simulator.config import ExchangeConfig, FirehoseConfig
from simulator.exchange import Exchange, TruthTrade
from simulator.faults import CHANNELS, KINDS, FaultError, Faults

__all__ = [
    "CHANNELS",
    "KINDS",
    "Clock",
    "Exchange",
    "ExchangeConfig",
    "FaultError",
    "Faults",
    "FirehoseConfig",
    "ManualClock",
    "RealClock",
    "ScaledClock",
    "TruthTrade",
]
