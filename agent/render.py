"""Human rendering of reports: the verdict first, then one compact row per probe.

Returns rich renderables; only the CLI prints them. Identifiers are masked here as in JSON.
Everything shown passes through :func:`safe`: model names, serials, versions, SSIDs, file names
and reasons are what a terminal said, and a hostile one must not be able to put an escape
sequence on the operator's screen (rich's ``Text`` keeps ESC).
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.text import Text

from posdiag.drivers.i18n import N_, _, format_datetime, ngettext
from posdiag.drivers.text import clean_text

from .logs import mask_identifier
from .report import (
    DeviceReport,
    VerdictStatus,
    activation_words,
    money_text,
    registration_words,
    sim_words,
)

SAFE_LINE_LIMIT = 1024


def safe(value: object, limit: int = SAFE_LINE_LIMIT) -> str:
    """Text made safe for a screen, line by line (a multi-line cell keeps its lines).

    Args:
        value: what to show (usually built from a device's answers); never raises.
        limit: characters per line.

    Returns:
        The text without control characters or escape sequences.
    """
    if not isinstance(value, str):
        return clean_text(value, limit)
    if value.isascii() and value.isprintable():
        return value if len(value) <= limit else clean_text(value, limit)
    return "\n".join(clean_text(line, limit) for line in value.split("\n"))


VERDICT_WORDS = {
    VerdictStatus.READY: N_("READY"),
    VerdictStatus.WIPE_REQUIRED: N_("WIPE REQUIRED"),
    VerdictStatus.SERVICE_REQUIRED: N_("SERVICE REQUIRED"),
    VerdictStatus.QUARANTINE: N_("QUARANTINE"),
    VerdictStatus.UNREACHABLE: N_("UNREACHABLE"),
}
"""What a verdict is called on a screen (the JSON keeps the identifier)."""


def verdict_text(status: VerdictStatus) -> str:
    """The verdict in the reader's language."""
    return _(VERDICT_WORDS[status])


STYLE = {
    VerdictStatus.READY: "bold green",
    VerdictStatus.WIPE_REQUIRED: "bold yellow",
    VerdictStatus.SERVICE_REQUIRED: "bold magenta",
    VerdictStatus.QUARANTINE: "bold red",
    VerdictStatus.UNREACHABLE: "bold red",
}


def _title(report: DeviceReport) -> str:
    ident = report.identity
    parts = [p for p in (ident.vendor, ident.model) if p] if ident else []
    if ident and ident.serial:
        parts.append(_("serial {serial}").format(serial=ident.serial))
    return " ".join(parts) or report.address


def _identity(report: DeviceReport) -> str:
    i = report.identity
    if i is None:
        return "—"
    parts = [
        f"{i.vendor or '?'} {i.model or '?'}",
        _("serial {serial}").format(serial=i.serial or _("unknown")),
    ]
    if i.hardware and i.hardware != i.model:
        parts.append(_("hardware {hardware}").format(hardware=i.hardware))
    return _(", ").join(parts)


def _activation(report: DeviceReport) -> str:
    a = report.activation
    if a is None:
        return "—"
    parts = [activation_words(a.state.value)]
    if a.terminal_id:
        parts.append(_("terminal ID {tid}").format(tid=mask_identifier(a.terminal_id)))
    if a.keys_loaded is not None:
        parts.append(_("keys loaded") if a.keys_loaded else _("no keys"))
    if a.status_text:
        parts.append(_("status: {status}").format(status=a.status_text))
    lines = [_(", ").join(parts)]
    lines.extend(f"- {e.fact}" for e in a.evidence if e.source not in ("status enquiry",))
    return "\n".join(lines)


def _firmware(report: DeviceReport) -> str:
    f = report.firmware
    if f is None:
        return _("not available on this terminal")
    return "\n".join(f"{name}: {version}" for name, version in f.components.items())


def _network(report: DeviceReport) -> str:
    n = report.network
    if n is None:
        return _("not available on this terminal")
    lines = []
    for itf in n.interfaces:
        state = _("up") if itf.up else _("down") if itf.up is False else "?"
        extra = ", ".join(x for x in (itf.ip, itf.mode, itf.mac) if x)
        lines.append(f"{itf.name} {state}" + (f" ({extra})" if extra else ""))
    if n.host_reachable is not None:
        host = n.host or ""
        if n.host_reachable:
            lines.append(_("payment host {host} reachable").format(host=host).replace("  ", " "))
        else:
            lines.append(
                _("payment host {host} NOT reachable").format(host=host).replace("  ", " ")
            )
    if n.sim_state or n.operator:
        state = sim_words(n.sim_state) if n.sim_state else "?"
        lines.append(
            _("SIM {state} {operator}").format(state=state, operator=n.operator or "").strip()
        )
    if n.registration:
        lines.append(_("cellular {state}").format(state=registration_words(n.registration)))
    if n.signal_dbm is not None:
        lines.append(_("signal {dbm} dBm").format(dbm=n.signal_dbm))
    # the driver's diagnosis note says what the host line above already says
    diagnosis = _("diagnosis: {result}").format(result="").strip()
    lines.extend(d for d in n.details if not d.startswith(diagnosis))
    if n.modem:
        modem = _("none") if n.modem == "none" else n.modem  # the driver's word for no modem
        lines.append(_("modem: {modem}").format(modem=modem))
    if n.tms:
        lines.append(_("TMS: {tms}").format(tms=n.tms))
    return "\n".join(lines) or "—"


def _battery(report: DeviceReport) -> str:
    b = report.battery
    if b is None:
        return _("not available on this terminal")
    parts = []
    if b.level_pct is not None:
        parts.append(f"{b.level_pct}%")
    if b.voltage_mv is not None:
        parts.append(f"{b.voltage_mv / 1000:.2f} V")
    if b.temperature_c is not None:
        parts.append(f"{b.temperature_c:.1f} °C")
    if b.health:
        parts.append(_("health {health}").format(health=b.health))
    if b.charging is not None:
        parts.append(_("charging") if b.charging else _("not charging"))
    if b.cycle_count is not None:
        parts.append(_("{cycles} cycles").format(cycles=b.cycle_count))
    if b.coin_cell_mv is not None:
        parts.append(_("coin cell {volts} V").format(volts=f"{b.coin_cell_mv / 1000:.2f}"))
    return _(", ").join(parts) or _("present")


def _merchant(report: DeviceReport) -> str:
    m = report.merchant_data
    if m is None:
        return _("not available on this terminal")
    lines = []
    p = m.pending_transactions
    if p is None:
        lines.append(_("unsettled transactions: not readable"))
    elif p.count:
        lines.append(
            ngettext(
                "{count} UNSETTLED transaction, {amount}",
                "{count} UNSETTLED transactions, {amount}",
                p.count,
            ).format(count=p.count, amount=money_text(p))
        )
    else:
        lines.append(_("no unsettled transactions"))
    lines.extend(m.notes)
    lines.extend(_("app: {app}").format(app=a) for a in m.apps)
    lines.extend(_("file: {file}").format(file=f) for f in m.files)
    lines.extend(_("network profile: {name}").format(name=n) for n in m.network_profiles)
    return "\n".join(lines)


def _tamper(report: DeviceReport) -> str:
    t = report.tamper
    if t is None:
        return _("not available on this terminal")
    if t.tampered:
        return _("TAMPERED: {details}").format(details="; ".join(t.details))
    return _("none reported")


def _backends(report: DeviceReport) -> str:
    """One line per configured backend: what it says of the unit (identifiers masked)."""
    lines = []
    for entry in report.backends:
        name = f"{entry.get('name')} ({entry.get('kind')})"
        if not entry.get("consulted"):
            lines.append(
                _("{backend}: not consulted: {error}").format(
                    backend=name, error=entry.get("error")
                )
            )
            continue
        parts = [
            str(entry.get("binding")),
            _("status {status}").format(status=entry.get("status") or "-"),
        ]
        if entry.get("pending"):
            parts.append(_("change pending"))
        if entry.get("merchant"):
            parts.append(_("merchant {merchant}").format(merchant=entry.get("merchant")))
        if entry.get("last_seen"):
            parts.append(_("last seen {when}").format(when=entry.get("last_seen")))
        if entry.get("battery_pct") is not None:
            parts.append(_("battery {level}%").format(level=entry.get("battery_pct")))
        lines.append(f"{name}: {_(', ').join(parts)}")
    return "\n".join(lines)


PROBE_WORDS = {
    "identify": N_("Identity"),
    "activation": N_("Activation"),
    "firmware": N_("Firmware"),
    "network": N_("Network"),
    "battery": N_("Battery"),
    "merchant_data": N_("Merchant data"),
    "tamper": N_("Tamper"),
    "health": N_("Health"),
}


EXCHANGE_WORDS = {
    # ZVT exchanges
    "status enquiry": N_("Terminal status"),
    "print system configuration": N_("System configuration printout"),
    "diagnosis": N_("Connection test to the payment host"),
    "turnover totals": N_("Unsettled totals"),
    "vendor system info": N_("Vendor system information"),
    # Android facts
    "telephony": N_("Mobile network"),
    "wifi": N_("Wi-Fi"),
    "airplane mode": N_("Airplane mode"),
    "packages": N_("Installed apps"),
    "storage": N_("Storage"),
    "accounts": N_("Accounts"),
    "pending batch": N_("Unsettled batch"),
}
"""The drivers' names for the facts they failed to read (English, stable, in ``errors``), in
words a person reads."""


def _error_plainly(error: str) -> str:
    """A probe's failure as the operator reads it; the protocol's own words are for --debug."""
    probe, sep, _detail = error.partition(":")
    name = probe.strip()
    words = PROBE_WORDS.get(name) or EXCHANGE_WORDS.get(name)
    if words is None and name.startswith("pending batch"):
        words = EXCHANGE_WORDS["pending batch"]
    if sep and words is not None:
        return _("{fact}: could not be read (details: --debug)").format(fact=_(words))
    return _("Some information could not be read (details: --debug)")


def render_report(report: DeviceReport, *, debug: bool = False) -> RenderableType:
    """The verdict line, its reasons, and the facts table.

    The technical error texts (what a protocol answered instead of what was expected) are for
    whoever debugs a terminal: shown with ``debug`` only; the reasons say it plainly.
    """
    from rich.table import Table  # only what is printed needs it, not `--version`

    status = report.verdict.status
    head = Text.assemble(
        (f" {verdict_text(status)} ", STYLE[status] + " reverse"),
        "  ",
        (safe(_title(report)), "bold"),
        ("  " + _("(simulated)") if report.simulated else "", "dim"),
    )
    reasons = Text(safe("\n".join(f"  • {r}" for r in report.verdict.reasons)))
    if status is VerdictStatus.UNREACHABLE:
        if debug and report.errors:
            return Group(head, reasons, Text(safe("\n".join(f"  {e}" for e in report.errors))))
        return Group(head, reasons)
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row(_("Address"), Text(safe(report.address)))
    table.add_row(_("Identity"), Text(safe(_identity(report))))
    table.add_row(_("Activation"), Text(safe(_activation(report))))
    if report.backends:
        table.add_row(_("Backends"), Text(safe(_backends(report))))
    quick = report.scope == "quick"
    if not quick:  # triage asked for none of these: "not available" would be untrue
        table.add_row(_("Firmware"), Text(safe(_firmware(report))))
        table.add_row(_("Network"), Text(safe(_network(report))))
        table.add_row(_("Battery"), Text(safe(_battery(report))))
    table.add_row(_("Merchant data"), Text(safe(_merchant(report))))
    table.add_row(_("Tamper"), Text(safe(_tamper(report))))
    if quick:
        table.add_row(
            _("Scope"), Text(_("quick check: firmware, network, battery and health not read"))
        )
    if report.health and report.health.temperature_c is not None:
        table.add_row(
            _("Temperature"),
            Text(
                _("{temperature} °C (device)").format(
                    temperature=f"{report.health.temperature_c:.1f}"
                )
            ),
        )
    if report.health and report.health.faults:
        table.add_row(_("Faults"), Text(safe("\n".join(report.health.faults))))
    if report.errors:
        shown = report.errors if debug else list(dict.fromkeys(map(_error_plainly, report.errors)))
        table.add_row(_("Not read"), Text(safe("\n".join(shown))))
    table.add_row(
        _("Checked"),
        Text(
            _("{when} in {seconds} s").format(
                when=format_datetime(report.checked_at), seconds=f"{report.duration_s:.1f}"
            )
        ),
    )
    return Group(head, reasons, Text(""), table)


def render_summary(reports: list[DeviceReport]) -> RenderableType:
    """One row per terminal, for checks of several terminals."""
    from rich.table import Table  # only what is printed needs it, not `--version`

    table = Table(title=_("posdiag check"), show_lines=False)
    table.add_column(_("verdict"), no_wrap=True)
    table.add_column(_("address"), overflow="fold")
    table.add_column(_("terminal"))
    table.add_column(_("reasons"), ratio=2)
    for report in reports:
        status = report.verdict.status
        table.add_row(
            Text(verdict_text(status), style=STYLE[status]),
            Text(safe(report.address + (" " + _("(simulated)") if report.simulated else ""))),
            Text(safe(_title(report))),
            Text(safe("\n".join(report.verdict.reasons))),
        )
    return table


OUTCOME_WORDS = {
    "erased": N_("erased"),
    "erased_with_exceptions": N_("erased with exceptions"),
    "not_erased": N_("not erased"),
    "aborted": N_("aborted"),
    "refused": N_("refused"),
    "unreachable": N_("unreachable"),
    "in_progress": N_("in progress"),
    "certificate_pending": N_("certificate pending"),
}
"""What a wipe outcome is called on a screen (ledger and JSON keep the identifier)."""
STEP_STATUS_WORDS = {
    "done": N_("done"),
    "verified": N_("verified"),
    "failed": N_("failed"),
    "skipped": N_("skipped"),
    "not_run": N_("not run"),
}

WIPE_STYLE = {
    "erased": "bold green",
    "erased_with_exceptions": "bold yellow",
    "not_erased": "bold red",
    "aborted": "bold magenta",
    "refused": "bold red",
    "unreachable": "bold red",
}


def render_wipe(result: Any) -> RenderableType:
    """The outcome line, its reasons and exceptions, the steps, and the certificate's path."""
    from rich.table import Table  # only what is printed needs it, not `--version`

    outcome = result.outcome.value
    ident = result.before.identity if result.before else None
    if result.before is not None and ident is None:
        outcome = "unreachable"  # nothing answered: exit code 3, not a resumable abort
    title = " ".join(p for p in (ident.vendor, ident.model) if p) if ident else result.address
    if ident and ident.serial:
        title += " " + _("serial {serial}").format(serial=ident.serial)
    parts: list[RenderableType] = [
        Text.assemble(
            (
                f" {_(OUTCOME_WORDS.get(outcome, outcome)).upper()} ",
                WIPE_STYLE.get(outcome, "bold") + " reverse",
            ),
            "  ",
            (safe(title), "bold"),
            ("  " + _("(resumed)") if result.resumed else "", "dim"),
        )
    ]
    lines = [f"  • {r}" for r in result.reasons] + [
        "  • " + _("exception: {exception}").format(exception=e) for e in result.exceptions
    ]
    if lines:
        parts.append(Text(safe("\n".join(lines))))
    if result.steps:
        table = Table(show_header=True, box=None, padding=(0, 2, 0, 2))
        for column in (_("step"), _("erases"), _("status"), _("verified"), _("detail")):
            table.add_column(column)
        for step in result.steps:
            verified = {True: _("yes"), False: _("NO"), None: "-"}[step.verified]
            table.add_row(
                Text(safe(step.name)),
                Text(safe(step.erases)),
                Text(safe(_(STEP_STATUS_WORDS.get(step.status, step.status)))),
                Text(verified),
                Text(safe(step.detail)),
            )
        parts += [Text(""), table]
    if result.certificate:
        files = [(_("certificate"), result.certificate), (_("printable"), result.printable)]
        if result.pdf:
            files.append((_("PDF"), result.pdf))
        width = max(cell_len(label) for label, _path in files) + 1
        shown = [f"  {label}:{' ' * (width - cell_len(label) - 1)} {path}" for label, path in files]
        parts.append(Text(safe("\n" + "\n".join(shown))))
    return Group(*parts)
