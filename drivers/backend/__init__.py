"""Backends: terminal management systems and acquirer platforms, where bindings live."""
