"""Depot policy: thresholds and rules (TOML) that turn a device report into a verdict.

The shipped ``policy.toml`` holds the defaults; a user file overrides any subset of its keys.
Rules only read the report's records, never a family's internals, so they hold for every family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posdiag.drivers.errors import PosdiagError

from .logs import mask_identifier
from .report import DeviceReport, Verdict, VerdictStatus, money_text


class PolicyError(PosdiagError):
    """A policy file that cannot be used."""


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            raise PolicyError(f"{where}: unknown policy key {key!r} (known: {', '.join(base)})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise PolicyError(f"{where}: [{key}] must be a table")
            out[key] = _merge(base[key], value, f"{where} [{key}]")
        elif not _same_kind(base[key], value):
            raise PolicyError(
                f"{where}: {key} = {value!r} has the wrong type (default: {base[key]!r})"
            )
        else:
            out[key] = value
    return out


def _validate(data: dict[str, Any], where: str) -> None:
    """Reject values a typo would turn into a silent "ready" (an unknown status or state)."""
    statuses = [s.value for s in VerdictStatus if s is not VerdictStatus.UNREACHABLE]
    if sorted(data["verdict"]["precedence"]) != sorted(statuses):
        raise PolicyError(
            f"{where}: [verdict] precedence must list each of {', '.join(statuses)} once"
        )
    from posdiag.drivers.model import ActivationState

    states = {s.value for s in ActivationState}
    unknown = [s for s in data["activation"]["wipe_states"] if s not in states]
    if unknown:
        raise PolicyError(
            f"{where}: [activation] wipe_states: unknown state(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(states))})"
        )


@dataclass(frozen=True)
class Policy:
    """The thresholds in force."""

    data: dict[str, Any]

    def get(self, section: str, key: str) -> Any:
        """A policy value."""
        return self.data[section][key]


def load_policy(path: Path | None = None) -> Policy:
    """The shipped defaults, overridden by ``path`` when given.

    Raises:
        PolicyError: unreadable file, bad TOML, unknown keys.
    """
    import tomllib  # here, not at import: `posdiag --version` reads no policy
    from importlib import resources

    default = tomllib.loads(
        (resources.files("posdiag.agent") / "policy.toml").read_text(encoding="utf-8")
    )
    if path is None:
        return Policy(default)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {path} is not UTF-8 text: {exc.reason}") from None
    try:
        override = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from None
    merged = _merge(default, override, str(path))
    _validate(merged, str(path))
    return Policy(merged)


MERGE_SOURCE = "device and backends"
"""Evidence source of the merge rule's conclusion (see ``posdiag.agent.backends``)."""
STATE_WORDS = {
    "activated": "activated",
    "partial": "partly activated (merchant traces remain but the binding is incomplete)",
}


def decide(report: DeviceReport, policy: Policy) -> Verdict:
    """The verdict and every reason that led to it."""
    if report.identity is None and report.activation is None:
        return Verdict(
            VerdictStatus.UNREACHABLE, tuple(report.errors) or ("the terminal did not answer",)
        )
    found: dict[str, list[str]] = {s.value: [] for s in VerdictStatus}

    if report.tamper and report.tamper.tampered:
        details = "; ".join(report.tamper.details) or "tamper reported"
        found["quarantine"].append(f"tampered: {details}; keep for investigation, never wipe")
    serial = (report.identity.serial or report.identity.tusn) if report.identity else None
    if not serial and policy.get("verdict", "quarantine_unknown_identity"):
        found["quarantine"].append("identity unknown: the terminal reported no serial number")

    activation = report.activation
    if activation and activation.state.value in policy.get("activation", "wipe_states"):
        tid = mask_identifier(activation.terminal_id)
        bound = f" (terminal ID {tid})" if tid else ""
        state = STATE_WORDS.get(activation.state.value, activation.state.value)
        sides = [e.fact for e in activation.evidence if e.source == MERGE_SOURCE]
        why = f" ({sides[0]})" if sides else ""
        found["wipe_required"].append(f"{state}{bound}: still bound to a merchant{why}")
    merchant = report.merchant_data
    if merchant and merchant.pending_transactions and merchant.pending_transactions.count:
        pending = merchant.pending_transactions
        found["wipe_required"].append(
            f"{pending.count} unsettled transaction{'s' if pending.count != 1 else ''} "
            f"({money_text(pending)}): settle (End-of-Day) before wiping"
        )
    if merchant and (merchant.apps or merchant.files or merchant.network_profiles):
        parts = [
            f"{len(items)} {label}"
            for items, label in (
                (merchant.apps, "payment app(s) with data"),
                (merchant.files, "merchant file(s)"),
                (merchant.network_profiles, "saved Wi-Fi network(s)"),
            )
            if items
        ]
        found["wipe_required"].append(f"merchant data remains: {', '.join(parts)}")

    battery = report.battery
    if battery:
        level_min = policy.get("battery", "min_level_pct")
        if battery.level_pct is not None and battery.level_pct < level_min and not battery.charging:
            found["service_required"].append(
                f"battery at {battery.level_pct}% and not charging (minimum {level_min}%)"
            )
        volt_min = policy.get("battery", "min_voltage_mv")
        # A main battery with a reported level is judged by that level; a coin cell always by volts.
        main_mv = battery.voltage_mv if battery.level_pct is None else None
        for label, mv in (("battery", main_mv), ("coin cell", battery.coin_cell_mv)):
            if mv is not None and mv < volt_min:
                found["service_required"].append(
                    f"{label} voltage {mv / 1000:.2f} V below {volt_min / 1000:.2f} V: replace it"
                )
        temp_max = policy.get("battery", "max_temperature_c")
        if battery.temperature_c is not None and battery.temperature_c > temp_max:
            found["service_required"].append(
                f"temperature {battery.temperature_c:.1f} °C above {temp_max:.1f} °C"
            )
        if battery.soh_pct is not None and battery.soh_pct < policy.get("battery", "min_soh_pct"):
            found["service_required"].append(f"battery state of health {battery.soh_pct}%")
        cycles = policy.get("battery", "max_cycle_count")
        if battery.cycle_count is not None and battery.cycle_count >= cycles:
            found["service_required"].append(f"battery worn: {battery.cycle_count} cycles")
        if battery.health and battery.health not in policy.get("battery", "good_health"):
            found["service_required"].append(f"battery health: {battery.health}")

    network = report.network
    if (
        network
        and network.host_reachable is False
        and policy.get("network", "require_host_reachable")
    ):
        detail = "; ".join(network.details)
        found["service_required"].append(
            "payment host not reachable" + (f" ({detail})" if detail else "")
        )
    if (
        network
        and network.sim_state == "READY"
        and network.registration is not None
        and network.registration != "IN_SERVICE"
        and policy.get("network", "require_cellular_service")
    ):
        state = network.registration.lower().replace("_", " ")
        found["service_required"].append(f"SIM inserted but no cellular service ({state})")
    if report.health:
        found["service_required"].extend(report.health.faults)
    if report.errors:
        # Facts that could not be read (merchant data, network…) must never certify "ready".
        found["service_required"].append(
            f"check incomplete ({len(report.errors)} error(s), see Errors): check again"
        )

    for status in policy.get("verdict", "precedence"):
        if found.get(status):
            reasons = found[status] + [
                reason
                for other in policy.get("verdict", "precedence")
                if other != status
                for reason in found.get(other, [])
            ]
            return Verdict(VerdictStatus(status), tuple(reasons))
    return Verdict(VerdictStatus.READY, ("no merchant data found; healthy",))
