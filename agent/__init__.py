"""posdiag.agent: the application (CLI, inspection, policy, reports) above the drivers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("posdiag")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
