"""Helpers shared by test modules (``pythonpath = ["tests"]``: ``from _support.x import y``)."""
