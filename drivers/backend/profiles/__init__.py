"""Shipped platform profiles for the generic connector (``<name>.toml``; see generic/profile.py).

A package only so the profiles ship in the wheel with the code that reads them.
"""
