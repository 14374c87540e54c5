"""The generic acquirer / agent-platform connector, driven by a platform profile (TOML).

``connect(config)`` is what :func:`posdiag.drivers.backend.registry.open_backend` calls for
``kind = "generic"``; the profile format is documented in :mod:`.profile`, the signing schemes
in :mod:`.signing` and the wire in :mod:`.codec`.
"""

from .backend import GenericBackend, connect
from .profile import Profile, load_profile, parse_profile

__all__ = ["GenericBackend", "Profile", "connect", "load_profile", "parse_profile"]
