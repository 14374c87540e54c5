"""posdiag.agent: the application (CLI, inspection, policy, reports) above the drivers.

``__version__`` is the single source of the version: the build reads it (``pyproject.toml``,
``[tool.setuptools.dynamic]``), and the running program reads it here. A literal rather than an
``importlib.metadata`` lookup, because that lookup alone took longer than a bare interpreter's
whole start-up, and ``posdiag --version`` answers before anything else is loaded.
"""

__version__ = "0.1.0"
