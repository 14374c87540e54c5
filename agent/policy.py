"""Depot policy: thresholds and rules (TOML) that turn a device report into a verdict.

The shipped ``policy.toml`` holds the defaults; a user file overrides any subset of its keys.
Rules only read the report's records, never a family's internals, so they hold for every family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.i18n import N_, _, ngettext

from .logs import mask_identifier
from .report import DeviceReport, Verdict, VerdictStatus, money_text, registration_words

if TYPE_CHECKING:
    from posdiag.drivers.model import CheckScope


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
            raise PolicyError(
                _("{where}: unknown policy key {key} (known: {known})").format(
                    where=where, key=repr(key), known=", ".join(base)
                )
            )
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise PolicyError(
                    _("{where}: [{key}] must be a table").format(where=where, key=key)
                )
            out[key] = _merge(base[key], value, f"{where} [{key}]")
        elif not _same_kind(base[key], value):
            raise PolicyError(
                _("{where}: {key} = {value} has the wrong type (default: {default})").format(
                    where=where, key=key, value=repr(value), default=repr(base[key])
                )
            )
        else:
            out[key] = value
    return out


def _validate(data: dict[str, Any], where: str) -> None:
    """Reject values a typo would turn into a silent "ready" (an unknown status or state)."""
    statuses = [s.value for s in VerdictStatus if s is not VerdictStatus.UNREACHABLE]
    if sorted(data["verdict"]["precedence"]) != sorted(statuses):
        raise PolicyError(
            _("{where}: [verdict] precedence must list each of {statuses} once").format(
                where=where, statuses=", ".join(statuses)
            )
        )
    from posdiag.drivers.model import ActivationState

    states = {s.value for s in ActivationState}
    unknown = [s for s in data["activation"]["wipe_states"] if s not in states]
    if unknown:
        raise PolicyError(
            _(
                "{where}: [activation] wipe_states: unknown states {unknown} (known: {known})"
            ).format(
                where=where, unknown=", ".join(map(repr, unknown)), known=", ".join(sorted(states))
            )
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
        raise PolicyError(
            _("cannot read policy file {path}: {why}").format(path=path, why=exc.strerror or exc)
        ) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(
            _("policy file {path} is not UTF-8 text: {why}").format(path=path, why=exc.reason)
        ) from None
    try:
        override = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(
            _("policy file {path} is not valid TOML: {why}").format(path=path, why=exc)
        ) from None
    merged = _merge(default, override, str(path))
    _validate(merged, str(path))
    return Policy(merged)


MERGE_SOURCE = "device and backends"
"""Evidence source of the merge rule's conclusion (see ``posdiag.agent.backends``)."""
STATE_WORDS = {
    "activated": N_("activated"),
    "partial": N_("partly activated (merchant traces remain but the binding is incomplete)"),
}


def check_scope(policy: Policy, *, quick: bool = False, full: bool = False) -> CheckScope:
    """How much a check asks: what the operator chose, else what the policy's rules read.

    The host dial-up (ZVT Diagnosis) costs seconds of line time, so it runs only when a rule
    reads host reachability or the operator asks for a full check; a quick check asks nothing
    beyond the triage facts.
    """
    from posdiag.drivers.model import CheckScope

    needs_host = bool(policy.get("network", "require_host_reachable"))
    return CheckScope(quick=quick, host_dialup=not quick and (full or needs_host))


def decide(report: DeviceReport, policy: Policy) -> Verdict:
    """The verdict and every reason that led to it."""
    if report.identity is None and report.activation is None:
        return Verdict(
            VerdictStatus.UNREACHABLE,
            tuple(report.errors) or (_("the terminal did not answer"),),
        )
    found: dict[str, list[str]] = {s.value: [] for s in VerdictStatus}

    if report.tamper and report.tamper.tampered:
        details = "; ".join(report.tamper.details) or _("tamper reported")
        found["quarantine"].append(
            _("tampered: {details}; keep for investigation, never wipe").format(details=details)
        )
    serial = (report.identity.serial or report.identity.tusn) if report.identity else None
    if not serial and policy.get("verdict", "quarantine_unknown_identity"):
        found["quarantine"].append(_("identity unknown: the terminal reported no serial number"))

    activation = report.activation
    if activation and activation.state.value in policy.get("activation", "wipe_states"):
        tid = mask_identifier(activation.terminal_id)
        state = _(STATE_WORDS.get(activation.state.value, activation.state.value))
        sides = [e.fact for e in activation.evidence if e.source == MERGE_SOURCE]
        if tid:
            state = _("{state} (terminal ID {tid})").format(state=state, tid=tid)
        reason = _("{state}: still bound to a merchant").format(state=state)
        if sides:
            reason = _("{reason} ({why})").format(reason=reason, why=sides[0])
        found["wipe_required"].append(reason)
    merchant = report.merchant_data
    if merchant and merchant.pending_transactions and merchant.pending_transactions.count:
        pending = merchant.pending_transactions
        found["wipe_required"].append(
            ngettext(
                "{count} payment not yet delivered to the acquirer: connect the terminal to the "
                "internet and let it deliver it before wiping",
                "{count} payments not yet delivered to the acquirer: connect the terminal to the "
                "internet and let it deliver them before wiping",
                pending.count,
            ).format(count=pending.count)
            if pending.undelivered
            else ngettext(
                "{count} unsettled transaction ({amount}): settle (End-of-Day) before wiping",
                "{count} unsettled transactions ({amount}): settle (End-of-Day) before wiping",
                pending.count,
            ).format(count=pending.count, amount=money_text(pending))
        )
    if merchant and (merchant.apps or merchant.files or merchant.network_profiles):
        counts = (len(merchant.apps), len(merchant.files), len(merchant.network_profiles))
        texts = (
            ngettext("{count} payment app with data", "{count} payment apps with data", counts[0]),
            ngettext("{count} merchant file", "{count} merchant files", counts[1]),
            ngettext("{count} saved Wi-Fi network", "{count} saved Wi-Fi networks", counts[2]),
        )
        parts = [text.format(count=n) for n, text in zip(counts, texts, strict=True) if n]
        found["wipe_required"].append(
            _("merchant data remains: {parts}").format(parts=_(", ").join(parts))
        )

    battery = report.battery
    if battery:
        level_min = policy.get("battery", "min_level_pct")
        if battery.level_pct is not None and battery.level_pct < level_min and not battery.charging:
            found["service_required"].append(
                _("battery at {level}% and not charging (minimum {minimum}%)").format(
                    level=battery.level_pct, minimum=level_min
                )
            )
        volt_min = policy.get("battery", "min_voltage_mv")
        # A main battery with a reported level is judged by that level; a coin cell always by volts.
        main_mv = battery.voltage_mv if battery.level_pct is None else None
        for label, mv in (
            (N_("battery voltage {volts} V below {minimum} V: replace it"), main_mv),
            (N_("coin cell voltage {volts} V below {minimum} V: replace it"), battery.coin_cell_mv),
        ):
            if mv is not None and mv < volt_min:
                found["service_required"].append(
                    _(label).format(volts=f"{mv / 1000:.2f}", minimum=f"{volt_min / 1000:.2f}")
                )
        temp_max = policy.get("battery", "max_temperature_c")
        if battery.temperature_c is not None and battery.temperature_c > temp_max:
            found["service_required"].append(
                _("temperature {temperature} °C above {maximum} °C").format(
                    temperature=f"{battery.temperature_c:.1f}", maximum=f"{temp_max:.1f}"
                )
            )
        if battery.soh_pct is not None and battery.soh_pct < policy.get("battery", "min_soh_pct"):
            found["service_required"].append(
                _("battery state of health {soh}%").format(soh=battery.soh_pct)
            )
        cycles = policy.get("battery", "max_cycle_count")
        if battery.cycle_count is not None and battery.cycle_count >= cycles:
            found["service_required"].append(
                _("battery worn: {cycles} cycles").format(cycles=battery.cycle_count)
            )
        if battery.health and battery.health not in policy.get("battery", "good_health"):
            found["service_required"].append(
                _("battery health: {health}").format(health=battery.health)
            )

    network = report.network
    if (
        network
        and network.host_reachable is False
        and policy.get("network", "require_host_reachable")
    ):
        detail = "; ".join(network.details)
        found["service_required"].append(
            _("payment host not reachable ({detail})").format(detail=detail)
            if detail
            else _("payment host not reachable")
        )
    if (
        network
        and network.sim_state == "READY"
        and network.registration is not None
        and network.registration != "IN_SERVICE"
        and policy.get("network", "require_cellular_service")
    ):
        state = registration_words(network.registration)
        found["service_required"].append(
            _("SIM inserted but no cellular service ({state})").format(state=state)
        )
    if report.health:
        found["service_required"].extend(report.health.faults)
    if report.errors:
        # Facts that could not be read (merchant data, network…) must never certify "ready".
        found["service_required"].append(
            ngettext(
                "check incomplete ({count} fact could not be read): check again",
                "check incomplete ({count} facts could not be read): check again",
                len(report.errors),
            ).format(count=len(report.errors))
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
    if report.scope == "quick":
        # Triage read no health, firmware or battery: it sorts the pile, it never certifies.
        return Verdict(
            VerdictStatus.READY,
            (
                _(
                    "quick check: not bound to a merchant, no unsettled money; a full check reads "
                    "its health"
                ),
            ),
        )
    return Verdict(VerdictStatus.READY, (_("no merchant data found; healthy"),))
