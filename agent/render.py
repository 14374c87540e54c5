"""Human rendering of reports: the verdict first, then one compact row per probe.

Returns rich renderables; only the CLI prints them. Identifiers are masked here as in JSON.
Everything shown passes through :func:`safe`: model names, serials, versions, SSIDs, file names
and reasons are what a terminal said, and a hostile one must not be able to put an escape
sequence on the operator's screen (rich's ``Text`` keeps ESC).
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from posdiag.drivers.text import clean_text

from .logs import mask_identifier
from .report import DeviceReport, VerdictStatus, money_text

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
        parts.append(f"serial {ident.serial}")
    return " ".join(parts) or report.address


def _identity(report: DeviceReport) -> str:
    i = report.identity
    if i is None:
        return "—"
    parts = [f"{i.vendor or '?'} {i.model or '?'}", f"serial {i.serial or 'unknown'}"]
    if i.hardware and i.hardware != i.model:
        parts.append(f"hardware {i.hardware}")
    return ", ".join(parts)


def _activation(report: DeviceReport) -> str:
    a = report.activation
    if a is None:
        return "—"
    parts = [a.state.value.replace("_", " ")]
    if a.terminal_id:
        parts.append(f"TID {mask_identifier(a.terminal_id)}")
    if a.keys_loaded is not None:
        parts.append("keys loaded" if a.keys_loaded else "no keys")
    if a.status_text:
        parts.append(f"status: {a.status_text}")
    lines = [", ".join(parts)]
    lines.extend(f"- {e.fact}" for e in a.evidence if e.source not in ("status enquiry",))
    return "\n".join(lines)


def _firmware(report: DeviceReport) -> str:
    f = report.firmware
    if f is None:
        return "unsupported"
    return "\n".join(f"{name}: {version}" for name, version in f.components.items())


def _network(report: DeviceReport) -> str:
    n = report.network
    if n is None:
        return "unsupported"
    lines = []
    for itf in n.interfaces:
        state = "UP" if itf.up else "DOWN" if itf.up is False else "?"
        extra = ", ".join(x for x in (itf.ip, itf.mode, itf.mac) if x)
        lines.append(f"{itf.name} {state}" + (f" ({extra})" if extra else ""))
    if n.host_reachable is not None:
        reach = "reachable" if n.host_reachable else "NOT reachable"
        lines.append(f"payment host {n.host or ''} {reach}".replace("  ", " "))
    if n.sim_state or n.operator:
        lines.append(f"SIM {n.sim_state or '?'} {n.operator or ''}".strip())
    if n.registration:
        lines.append(f"cellular {n.registration.replace('_', ' ').lower()}")
    if n.signal_dbm is not None:
        lines.append(f"signal {n.signal_dbm} dBm")
    lines.extend(d for d in n.details if not d.startswith("diagnosis:"))
    if n.modem:
        lines.append(f"modem: {n.modem}")
    if n.tms:
        lines.append(f"TMS: {n.tms}")
    return "\n".join(lines) or "—"


def _battery(report: DeviceReport) -> str:
    b = report.battery
    if b is None:
        return "unsupported"
    parts = []
    if b.level_pct is not None:
        parts.append(f"{b.level_pct}%")
    if b.voltage_mv is not None:
        parts.append(f"{b.voltage_mv / 1000:.2f} V")
    if b.temperature_c is not None:
        parts.append(f"{b.temperature_c:.1f} °C")
    if b.health:
        parts.append(f"health {b.health}")
    if b.charging is not None:
        parts.append("charging" if b.charging else "not charging")
    if b.cycle_count is not None:
        parts.append(f"{b.cycle_count} cycles")
    if b.coin_cell_mv is not None:
        parts.append(f"coin cell {b.coin_cell_mv / 1000:.2f} V")
    return ", ".join(parts) or "present"


def _merchant(report: DeviceReport) -> str:
    m = report.merchant_data
    if m is None:
        return "unsupported"
    lines = []
    p = m.pending_transactions
    if p is None:
        lines.append("unsettled transactions: not readable")
    elif p.count:
        lines.append(f"{p.count} UNSETTLED transactions, {money_text(p)}")
    else:
        lines.append("no unsettled transactions")
    lines.extend(m.notes)
    lines.extend(f"app: {a}" for a in m.apps)
    lines.extend(f"file: {f}" for f in m.files)
    lines.extend(f"network profile: {n}" for n in m.network_profiles)
    return "\n".join(lines)


def _tamper(report: DeviceReport) -> str:
    t = report.tamper
    if t is None:
        return "unsupported"
    return "TAMPERED: " + "; ".join(t.details) if t.tampered else "none reported"


def _backends(report: DeviceReport) -> str:
    """One line per configured backend: what it says of the unit (identifiers masked)."""
    lines = []
    for entry in report.backends:
        name = f"{entry.get('name')} ({entry.get('kind')})"
        if not entry.get("consulted"):
            lines.append(f"{name}: not consulted: {entry.get('error')}")
            continue
        parts = [str(entry.get("binding")), f"status {entry.get('status') or '-'}"]
        if entry.get("pending"):
            parts.append("change pending")
        if entry.get("merchant"):
            parts.append(f"merchant {entry.get('merchant')}")
        if entry.get("last_seen"):
            parts.append(f"last seen {entry.get('last_seen')}")
        if entry.get("battery_pct") is not None:
            parts.append(f"battery {entry.get('battery_pct')}%")
        lines.append(f"{name}: {', '.join(parts)}")
    return "\n".join(lines)


def render_report(report: DeviceReport) -> RenderableType:
    """The verdict line, its reasons, and the facts table."""
    from rich.table import Table  # only what is printed needs it, not `--version`

    status = report.verdict.status
    head = Text.assemble(
        (f" {status.value.upper().replace('_', ' ')} ", STYLE[status] + " reverse"),
        "  ",
        (safe(_title(report)), "bold"),
        ("  (simulated)" if report.simulated else "", "dim"),
    )
    reasons = Text(safe("\n".join(f"  • {r}" for r in report.verdict.reasons)))
    if status is VerdictStatus.UNREACHABLE:
        return Group(head, reasons)
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("Address", Text(safe(report.address)))
    table.add_row("Identity", Text(safe(_identity(report))))
    table.add_row("Activation", Text(safe(_activation(report))))
    if report.backends:
        table.add_row("Backends", Text(safe(_backends(report))))
    table.add_row("Firmware", Text(safe(_firmware(report))))
    table.add_row("Network", Text(safe(_network(report))))
    table.add_row("Battery", Text(safe(_battery(report))))
    table.add_row("Merchant data", Text(safe(_merchant(report))))
    table.add_row("Tamper", Text(safe(_tamper(report))))
    if report.health and report.health.temperature_c is not None:
        table.add_row("Temperature", Text(f"{report.health.temperature_c:.1f} °C (device)"))
    if report.health and report.health.faults:
        table.add_row("Faults", Text(safe("\n".join(report.health.faults))))
    if report.errors:
        table.add_row("Errors", Text(safe("\n".join(report.errors))))
    table.add_row("Checked", Text(f"{report.checked_at} in {report.duration_s:.1f} s"))
    return Group(head, reasons, Text(""), table)


def render_summary(reports: list[DeviceReport]) -> RenderableType:
    """One row per terminal, for checks of several terminals."""
    from rich.table import Table  # only what is printed needs it, not `--version`

    table = Table(title="posdiag check", show_lines=False)
    table.add_column("verdict", no_wrap=True)
    table.add_column("address", overflow="fold")
    table.add_column("terminal")
    table.add_column("reasons", ratio=2)
    for report in reports:
        status = report.verdict.status
        table.add_row(
            Text(status.value.upper().replace("_", " "), style=STYLE[status]),
            Text(safe(report.address + (" (simulated)" if report.simulated else ""))),
            Text(safe(_title(report))),
            Text(safe("\n".join(report.verdict.reasons))),
        )
    return table


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
        title += f" serial {ident.serial}"
    parts: list[RenderableType] = [
        Text.assemble(
            (
                f" {outcome.upper().replace('_', ' ')} ",
                WIPE_STYLE.get(outcome, "bold") + " reverse",
            ),
            "  ",
            (safe(title), "bold"),
            ("  (resumed)" if result.resumed else "", "dim"),
        )
    ]
    lines = [f"  • {r}" for r in result.reasons] + [
        f"  • exception: {e}" for e in result.exceptions
    ]
    if lines:
        parts.append(Text(safe("\n".join(lines))))
    if result.steps:
        table = Table(show_header=True, box=None, padding=(0, 2, 0, 2))
        for column in ("step", "erases", "status", "verified", "detail"):
            table.add_column(column)
        for step in result.steps:
            verified = {True: "yes", False: "NO", None: "-"}[step.verified]
            table.add_row(
                Text(safe(step.name)),
                Text(safe(step.erases)),
                Text(safe(step.status)),
                Text(verified),
                Text(safe(step.detail)),
            )
        parts += [Text(""), table]
    if result.certificate:
        parts.append(
            Text(safe(f"\n  certificate: {result.certificate}\n  printable:   {result.printable}"))
        )
    return Group(*parts)
