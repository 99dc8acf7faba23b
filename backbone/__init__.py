"""backbone: the live hybrid Upbit client.

``MarketDataBackbone`` streams tickers, trades, orderbooks and candles over the WebSocket,
falls back to REST by itself, repairs trade gaps, and yields :mod:`backbone.models` records
whatever the source. The pieces it is built from are exported for callers that need one of
them alone: the unifier, the WebSocket manager, the REST client, the router and the session.
"""

from backbone.client import BackboneStatistics, MarketDataBackbone, get_ticker_simple
from backbone.config import UPBIT_REST_URL, UPBIT_WS_URL, BackboneConfig, ChannelStrategy
from backbone.errors import (
    BackboneError,
    ClosedError,
    InvalidArgumentError,
    ProtocolError,
    RateLimited,
    StallError,
    TransportError,
    UnknownSymbolError,
    UpbitAPIError,
    UsageError,
)
from backbone.policy import Backoff
from backbone.router import ChannelHealth, ChannelRouter, FallbackPlan
from backbone.session import HealthReport, SessionManager
from backbone.streams import Overflow, SubscriberStats
from backbone.unifier import DataUnifier
from backbone.upbit.rest import RestClient
from backbone.upbit.ws import WebSocketManager

__all__ = [
    "UPBIT_REST_URL",
    "UPBIT_WS_URL",
    "BackboneConfig",
    "BackboneError",
    "BackboneStatistics",
    "Backoff",
    "ChannelHealth",
    "ChannelRouter",
    "ChannelStrategy",
    "ClosedError",
    "DataUnifier",
    "FallbackPlan",
    "HealthReport",
    "InvalidArgumentError",
    "MarketDataBackbone",
    "Overflow",
    "ProtocolError",
    "RateLimited",
    "RestClient",
    "SessionManager",
    "StallError",
    "SubscriberStats",
    "TransportError",
    "UnknownSymbolError",
    "UpbitAPIError",
    "UsageError",
    "WebSocketManager",
    "get_ticker_simple",
]
