"""tests/interop fixtures: the real AOSP adbd peer and a simulator with the same facts."""

from _support.adbd_world import adbd_world, peers

__all__ = ["adbd_world", "peers"]
