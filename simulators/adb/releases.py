"""What adbd of each Android release puts in its CNXN: protocol version, max payload, features.

Clients decide by these what they may ask (``shell_v2`` exit codes, ``stat_v2``, ``ls_v2``…),
and size their writes by the payload, so a simulated Android 7 unit must not announce what only
Android 11 offers. The figures, from AOSP ``adb.h`` and ``transport.cpp`` over the releases:

* Android ≤ 6: version 0x01000000, 4 KiB payload (``MAX_PAYLOAD_V1``), no features.
* Android 7-8: version 0x01000000, 256 KiB (``MAX_PAYLOAD_V2``); ``shell_v2`` and ``cmd`` (7),
  ``stat_v2`` (8). The reference adbd in ``shared/interop`` (Android 7/8-era) confirms the
  version, the payload and ``shell_v2``.
* Android 9: version 0x01000001 (checksums skipped) and 1 MiB; adds ``fixed_push_mkdir`` and
  ``fixed_push_symlink_timestamp``.
* Android 10: adds ``apex``, ``abb``, ``abb_exec``, ``remount_shell``.
* Android 11: adds ``ls_v2``, ``track_app``, ``sendrecv_v2`` (+ brotli, dry_run).
* Android 12+: adds ``sendrecv_v2_lz4``, ``sendrecv_v2_zstd``, ``openscreen_mdns``,
  ``delayed_ack``.

The simulator advertises only what it implements: :data:`NOT_SIMULATED` features (Android
Binder services, compressed transfers, the delayed-ack window) are left out of the banner, so a
stock client falls back to what the simulator answers instead of failing on a refused service.
The release list after Android 8 is from AOSP's history, not checked against a device.
"""

from __future__ import annotations

from dataclasses import dataclass

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD_V1 = 4 * 1024
MAX_PAYLOAD_V2 = 256 * 1024
MAX_PAYLOAD = 1024 * 1024

_FEATURES_BY_RELEASE: tuple[tuple[int, tuple[str, ...]], ...] = (
    (7, ("shell_v2", "cmd")),
    (8, ("stat_v2",)),
    (9, ("fixed_push_mkdir", "fixed_push_symlink_timestamp")),
    (10, ("apex", "abb", "abb_exec", "remount_shell")),
    (11, ("ls_v2", "track_app", "sendrecv_v2", "sendrecv_v2_brotli", "sendrecv_v2_dry_run")),
    (12, ("sendrecv_v2_lz4", "sendrecv_v2_zstd", "openscreen_mdns", "delayed_ack")),
)

NOT_SIMULATED = frozenset(
    {
        "abb",
        "abb_exec",
        "track_app",
        "sendrecv_v2",
        "sendrecv_v2_brotli",
        "sendrecv_v2_dry_run",
        "sendrecv_v2_lz4",
        "sendrecv_v2_zstd",
        "openscreen_mdns",
        "delayed_ack",
    }
)
"""Features a real adbd of the release sends that the simulator does not implement."""


@dataclass(frozen=True)
class LinkParameters:
    """What the device offers in its CNXN."""

    version: int
    max_payload: int


def major(release: str) -> int:
    """The major Android version of a release string (``"8.1.0"`` → 8; unknown → 11)."""
    head = release.strip().split(".")[0]
    return int(head) if head.isdigit() else 11


def release_features(release: str) -> list[str]:
    """The features the release's adbd advertises that the simulator implements, in order."""
    number = major(release)
    features = [f for since, names in _FEATURES_BY_RELEASE if number >= since for f in names]
    return [f for f in features if f not in NOT_SIMULATED]


def link_parameters(release: str) -> LinkParameters:
    """Protocol version and max payload of the release's adbd."""
    number = major(release)
    if number >= 9:
        return LinkParameters(A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD)
    if number >= 7:
        return LinkParameters(A_VERSION_MIN, MAX_PAYLOAD_V2)
    return LinkParameters(A_VERSION_MIN, MAX_PAYLOAD_V1)
