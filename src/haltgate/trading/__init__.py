"""The trader-ai README's ``TradingCircuitBreakers`` facade over the section-3 breakers.

``config.py`` the thresholds, ``provider.py`` the portfolio protocol, ``breakers.py`` the
breaker set, ``kill_switch.py`` key-guarded resets, ``facade.py`` the facade itself.
"""

from .config import TradingBreakerConfig
from .facade import TradingCircuitBreakers
from .kill_switch import KillSwitch
from .provider import PortfolioProvider

__all__ = ["KillSwitch", "PortfolioProvider", "TradingBreakerConfig", "TradingCircuitBreakers"]
