"""Vendor label sets for the ZVT system-configuration printout parser, kept as TOML data.

This folder is a package only so that packaging ships the ``*.toml`` files next to it (the
project's package-data rule matches ``*.toml`` per package) and ``importlib.resources`` can find
them in a wheel as well as in a checkout. Adding a vendor means adding one TOML file here; the
schema is described in :mod:`posdiag.drivers.zvt.printout`.
"""
