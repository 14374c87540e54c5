"""The command line's backend parts: backend-only checks, ``lost``, ``simulate backend``.

Kept out of ``cli.py`` (which owns the device commands) so each module does one job; the CLI
registers ``lost`` from here and calls the helpers from ``check``, ``wipe``, ``simulate`` and
``station``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from posdiag.drivers.backend.model import (
    BackendAuthError,
    BackendConfigError,
    Binding,
    TerminalKey,
)
from posdiag.drivers.i18n import _
from posdiag.drivers.model import Identity

from .cli_common import (
    EXIT_NOT_READY,
    EXIT_READY,
    EXIT_USAGE,
    Context,
    _simulation_records,
    backends_option,
    fail,
    guarded,
    out,
)
from .policy import load_policy
from .report import DeviceReport, Verdict, VerdictStatus, record_report, utc_now_text

if TYPE_CHECKING:
    from .backends import Backends, BackendView
    from .policy import Policy

__all__ = [
    "backend_report",
    "is_backend_target",
    "load_backends",
    "start_simulated_backend",
    "terminal_key",
]

_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
NO_BACKEND = (
    "no backend is configured: add one to {path} or pass --backends FILE "
    "(posdiag simulate backend writes a ready one)"
)


def is_backend_target(text: str) -> bool:
    """``sn:…``, ``tusn:…`` or a bare label pasted from a scanner (not a device address/path)."""
    stripped = text.strip()
    if stripped.lower().startswith(("sn:", "tusn:")):
        return True
    return not _ADDRESS.match(stripped) and not stripped.startswith(("/", ".", "COM", "com"))


def terminal_key(text: str) -> TerminalKey:
    """The serial and/or TUSN a target names (raises a one-line error for a bad label)."""
    from posdiag.drivers.backend.tusn import split_label

    return split_label(text)


def load_backends(path: Path | None) -> Backends:
    """The configured backends (``--backends FILE`` or the user's file)."""
    from .backends import Backends

    return Backends.load(path)


def require_backends(backends: Backends) -> None:
    """A backend-only target needs a backend: say where to configure one."""
    if not backends:
        from posdiag.drivers.backend.config import default_backends_path

        raise BackendConfigError(NO_BACKEND.format(path=default_backends_path()))


def backend_report(
    text: str, backends: Backends, policy: Policy, views: list[BackendView] | None = None
) -> DeviceReport:
    """A check of a unit no cable reaches: every backend's view, merged, and a verdict.

    ``views``: what the backends said, when a bulk query already asked them (station scan).
    """
    from .backends import merge_activation, view_json
    from .policy import decide

    require_backends(backends)
    key = terminal_key(text)
    started = time.monotonic()
    report = DeviceReport(
        address=f"sn:{key.serial}" if key.serial else f"tusn:{key.tusn}",
        family="backend",
        checked_at=utc_now_text(),
    )
    if views is None:
        views = backends.consult(key)
    report.backends = [view_json(v) for v in views]
    known = [v.record for v in views if v.record is not None]
    model = next((r.model for r in known if r.model), None)
    report.identity = Identity(model=model, serial=key.serial, tusn=key.tusn)
    report.unsupported.append(
        "device: not connected; only the backends were consulted (battery, merchant data and "
        "tamper need the cable)"
    )
    report.duration_s = time.monotonic() - started
    if not known:
        refused = [v for v in views if v.auth_failed]
        if refused and len(refused) == len(views):
            # wrong key, secret or clock: a usage problem (exit 2), like a wrong ZVT password
            raise BackendAuthError(
                refused[0].error or _("{name} refused the credentials").format(name=refused[0].name)
            )
        reasons = tuple(str(v.error) for v in views) or ("no backend answered",)
        report.errors.extend(reasons)
        report.verdict = Verdict(VerdictStatus.UNREACHABLE, reasons)
        return report
    report.activation = merge_activation(None, views)
    if all(r.binding is Binding.UNKNOWN for r in known):
        report.verdict = Verdict(
            VerdictStatus.SERVICE_REQUIRED,
            (
                _(
                    "no configured backend knows {label}: check the label, or the backend it "
                    "belongs to"
                ).format(label=key.label()),
            ),
        )
        return report
    report.verdict = decide(report, policy)
    disabled = [r.backend for r in known if r.binding is Binding.DISABLED]
    if disabled and report.verdict.status is VerdictStatus.READY:
        report.verdict = Verdict(
            VerdictStatus.QUARANTINE,
            (
                _(
                    "disabled in {join} (locked or reported lost): find out why before it goes back"
                ).format(join=", ".join(disabled)),
            ),
        )
    elif report.verdict.status is VerdictStatus.READY:
        free = ", ".join(r.backend for r in known if r.binding is Binding.UNBOUND)
        report.verdict = Verdict(
            VerdictStatus.READY,
            (
                _("unbound in {free}; the device itself was not checked (no cable)").format(
                    free=free
                ),
            ),
        )
    return report


# --- simulate backend ------------------------------------------------------------------------


def start_simulated_backend(
    kind: str, listen: str | None, terminals: tuple[str, ...], faults: dict[str, str]
) -> tuple[Any, Path]:
    """Start a simulated backend and write a ready backends file (0600) pointing at it."""
    from posdiag.simulators.backend.catalog import create_backend_simulator

    host, port = "127.0.0.1", 0
    if listen:
        host, sep, port_text = listen.rpartition(":")
        if not sep or not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise BackendConfigError(
                _("--tcp wants HOST:PORT (port 0 to 65535), got {listen!r}").format(listen=listen)
            )
        host, port = host.strip("[]") or "127.0.0.1", int(port_text)
    simulator = create_backend_simulator(kind, terminals, faults, host, port)
    simulator.start()
    folder = Path(tempfile.mkdtemp(prefix="posdiag-backend-"))
    folder.chmod(0o700)
    path = folder / "backends.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(mark_simulated(simulator.backends_toml(kind)))
    return simulator, path


def serve_until_stopped(simulator: Any) -> None:
    """Block until Ctrl-C or SIGTERM, then stop the simulator."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


# --- lost ------------------------------------------------------------------------------------


def report_lost(
    backends: Backends, label: str, reason: str, policy: Policy
) -> tuple[list[dict[str, Any]], DeviceReport]:
    """Disable/lock the unit in every backend that knows it; the outcomes and a fresh report.

    Each outcome says what was sent and whether a fresh lookup confirmed it; the report after
    (backend-only) is what the ledger records, its verdict naming the loss.
    """
    require_backends(backends)
    key = terminal_key(label)
    outcomes = []
    for config, change in backends.report_lost(key, reason):
        outcomes.append(
            {
                "backend": config.name,
                "kind": config.kind,
                "action": change.action,
                "status": change.status.value,
                "confirmed": change.confirmed,
                "binding_before": change.before.binding.value,
                "binding_after": change.after.binding.value if change.after else None,
                "detail": change.detail,
                "requests": list(change.requests),
            }
        )
    from .manifest import LOST_PREFIX  # SQLAlchemy: not at the CLI's start-up

    after = backend_report(label, backends, policy)
    after.address = f"{LOST_PREFIX}{after.address}"  # report --kind lost lists these
    confirmed = [o["backend"] for o in outcomes if o["confirmed"]]
    if confirmed:
        after.verdict = Verdict(
            VerdictStatus.QUARANTINE,
            (
                _("reported lost ({reason}): disabled in {join}").format(
                    reason=reason, join=", ".join(confirmed)
                ),
            ),
        )
    return outcomes, after


def backends_simulated(backends: Backends) -> bool:
    """True when a configured backend is a simulator (its records stay out of a depot's ledger)."""
    return any(bool(c.setting("simulated")) for c in backends.configs)


def mark_simulated(toml_text: str) -> str:
    """A simulator's backends file, each section marked ``simulated = true``."""
    lines = []
    for line in toml_text.splitlines():
        lines.append(line)
        if re.fullmatch(r"\s*\[backend\.[^.\]]+\]\s*", line):
            lines.append("simulated = true")
    return "\n".join(lines) + "\n"


def scanned_labels(stream: Any, limit: int = 10_000) -> Iterator[str]:
    """Labels from a keyboard-wedge scanner or a file, one per line (blank lines and # skipped).

    A generator, so a scanner's label is checked before the next is typed. Bounded: a scanner
    stuck on repeat cannot fill memory (at most ``limit`` labels, 256 characters each);
    duplicates are kept once, in first-seen order.
    """
    seen: set[str] = set()
    for raw in stream:
        line = str(raw)[:256].strip()
        if not line or line.startswith("#") or line in seen:
            continue
        seen.add(line)
        yield line
        if len(seen) >= limit:
            return


def _bulk_views(backends: Backends, labels: list[str]) -> dict[str, list[BackendView]]:
    """The backends' views of every label of a file, from one bulk query where one exists."""
    from posdiag.drivers.errors import PosdiagError

    keys: dict[str, TerminalKey] = {}
    for label in labels:
        try:
            keys[label] = terminal_key(label)
        except PosdiagError:
            continue  # reported when its turn comes
    if not keys:
        return {}
    views = backends.consult_many(list(dict.fromkeys(keys.values())))
    return {label: views[key] for label, key in keys.items()}


def scan_station(
    ctx: Any,
    backends: Backends,
    policy: Policy,
    ledger_url: str | None,
    operator: str | None,
    as_json: bool,
    stream: Any = None,
) -> bool:
    """The station's scanner mode: each scanned label checked in its backends and recorded.

    Rows go to the same ledger (and so the same ``report --kind checks`` manifest) as
    cable-checked terminals, family ``backend``. A label that cannot be read is reported and
    skipped; the run goes on. Returns True when every scanned unit is free to go back.
    """
    from posdiag.drivers.errors import PosdiagError

    from .ledger import Ledger
    from .report import record_report, to_json

    require_backends(backends)
    simulated = backends_simulated(backends)
    if simulated:
        ledger_url = _simulation_records(ctx, ledger_url, None, _("Simulated backend"))[0]
    stream = sys.stdin if stream is None else stream
    interactive = getattr(stream, "isatty", lambda: False)()
    if interactive:
        out.print(Text(_("Scan labels (one per line; Ctrl-D to finish):")))
    counts: dict[str, int] = {}
    ok = True
    # piped (a file of labels): all at once, so a backend's bulk query serves them
    labels: Iterable[str] = scanned_labels(stream) if interactive else list(scanned_labels(stream))
    prefetched = {} if interactive else _bulk_views(backends, list(labels))
    with Ledger(ledger_url) as ledger:
        for label in labels:
            try:
                report = backend_report(label, backends, policy, prefetched.get(label))
            except PosdiagError as exc:
                ok = False
                counts["unreadable"] = counts.get("unreadable", 0) + 1
                line = {"event": "scan", "label": label[:64], "error": str(exc)}
                out.print(
                    Text(
                        json.dumps(line, ensure_ascii=False) if as_json else f"{label[:64]}: {exc}"
                    )
                )
                continue
            report.simulated = simulated
            record_report(ledger, report, operator)
            status = report.verdict.status.value
            counts[status] = counts.get(status, 0) + 1
            ok = ok and status == "ready"
            if as_json:
                out.print(
                    Text(json.dumps({"event": "scan", **to_json(report)}, ensure_ascii=False)),
                    soft_wrap=True,
                )
            else:
                reasons = "; ".join(report.verdict.reasons)
                out.print(Text(f"{report.address}: {status}" + (f": {reasons}" if reasons else "")))
    backends.close()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing scanned"
    out.print(Text(f"scanned: {summary}"))
    return ok


# --- the lost command ------------------------------------------------------------------------


@click.command()
@click.argument("label")
@click.option("--reason", required=True, help="Why (stolen, not returned by the merchant…).")
@click.option("--operator", required=True, help="Who reports it (recorded in the ledger).")
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask (scripts).")
@backends_option
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@guarded
def lost(
    ctx: Context,
    label: str,
    reason: str,
    operator: str,
    assume_yes: bool,
    backends_file: Path | None,
    ledger_url: str | None,
    as_json: bool,
) -> None:
    """Report a unit lost (挂失): disable or lock it in every backend that knows it.

    LABEL is a serial number, sn:SERIAL, tusn:TUSN or a label pasted from a scanner. Each change
    is confirmed by a fresh lookup and recorded in the ledger. Exit 0 when every backend that
    knows the unit confirmed it, 1 otherwise.
    """
    from .cli_backend import backends_simulated, report_lost, terminal_key
    from .ledger import Ledger

    backends = load_backends(backends_file)
    policy = load_policy()
    key = terminal_key(label)
    if not assume_yes:
        if not sys.stdin.isatty():
            fail(
                _("reporting a unit lost needs confirmation: run it in a terminal, or pass --yes"),
                EXIT_USAGE,
                ctx,
            )
        typed = click.prompt(
            _("Disable {label} in its backends? Type the label again").format(label=key.label()),
            err=True,
        )
        if terminal_key(typed) != key:
            fail(_("not confirmed: the label typed differs"), EXIT_USAGE, ctx)
    try:
        outcomes, after = report_lost(backends, label, reason, policy)
    finally:
        backends.close()
    after.simulated = backends_simulated(backends)
    if after.simulated:
        ledger_url = _simulation_records(ctx, ledger_url, None, _("Simulated backend"))[0]
    with Ledger(ledger_url) as ledger:
        record_report(ledger, after, operator)
        for outcome in outcomes:
            ledger.audit("backend.lost", reason=reason, **outcome)
    confirmed = bool(outcomes) and all(o["confirmed"] for o in outcomes)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "label": key.label(),
                    "reason": reason,
                    "outcomes": outcomes,
                    "confirmed": confirmed,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    elif not outcomes:
        out.print(
            Text(
                _("{label}: no configured backend knows this unit; nothing changed").format(
                    label=key.label()
                )
            )
        )
    else:
        for o in outcomes:
            state = "confirmed" if o["confirmed"] else "NOT confirmed"
            detail = f" ({o['detail']})" if o["detail"] else ""
            out.print(
                Text(
                    f"{key.label()} in {o['backend']}: {o['status']}, "
                    f"{o['binding_before']} → {o['binding_after'] or '?'}, {state}{detail}"
                )
            )
    sys.exit(EXIT_READY if confirmed else EXIT_NOT_READY)
