"""``posdiag doctor``: the station's set-up checks on screen, as JSON, or the udev rules file.

The checks themselves are in :mod:`.doctor` and :mod:`.udev`; this module only prints them.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from rich.text import Text

from posdiag.drivers.i18n import N_, _, ngettext

from .cli_common import EXIT_NOT_READY, EXIT_READY, Context, err, guarded, out

if TYPE_CHECKING:  # the checks load structlog and more: only `posdiag doctor` needs them
    from rich.table import Table

    from .doctor import Check

__all__ = ["doctor"]

TITLES = {
    "libusb": N_("USB library"),
    "usb_bus": N_("USB bus"),
    "usb_permissions": N_("USB device access"),
    "udev_rules": N_("udev rules"),
    "serial_ports": N_("Serial ports"),
    "station_key": N_("Station key"),
    "ledger": N_("Ledger"),
    "clock": N_("Clock"),
}
"""What each check is called on screen (its ``name`` stays the JSON identifier)."""

STATUS_WORDS = {"ok": N_("OK"), "warning": N_("Warning"), "problem": N_("Problem")}
STATUS_STYLES = {"ok": "green", "warning": "yellow", "problem": "bold red"}


def _table(checks: list[Check]) -> Table:
    """Check, status in colour, then what was found with the fix under it.

    The fix shares the finding's column rather than having its own, so the sentences (and the
    commands in them, which a technician copies) get the width of the screen.
    """
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, expand=False)
    table.add_column(_("Check"), no_wrap=True)
    table.add_column(_("Status"), no_wrap=True)
    table.add_column(_("What was found, and how to fix it"), overflow="fold")
    for check in checks:
        style = STATUS_STYLES[check.status]
        details = Text(check.found)
        if check.fix:
            details.append("\n")
            details.append(_("Fix: {fix}").format(fix=check.fix), style="cyan")
        table.add_row(
            Text(_(TITLES.get(check.name, check.name))),
            Text(_(STATUS_WORDS[check.status]), style=style),
            details,
        )
    return table


def _summary(checks: list[Check]) -> Text:
    problems = sum(check.status == "problem" for check in checks)
    warnings = sum(check.status == "warning" for check in checks)
    if not problems and not warnings:
        return Text(_("All is well: this computer is ready to work as a station."), style="green")
    text = _("Not ready: {problems}, {warnings}.").format(
        problems=ngettext("{n} problem", "{n} problems", problems).format(n=problems),
        warnings=ngettext("{n} warning", "{n} warnings", warnings).format(n=warnings),
    )
    return Text(text, style="bold red" if problems else "yellow")


def _print_udev_rules() -> None:
    from .udev import RULES_INSTALL_PATH, udev_rules

    click.echo(udev_rules(), nl=False)
    err.print(
        Text(
            _(
                "These are posdiag's udev rules. Install them with: posdiag doctor --udev-rules | "
                "sudo tee {path}, then: sudo udevadm control --reload-rules && sudo udevadm "
                "trigger, and plug the terminals in again."
            ).format(path=RULES_INSTALL_PATH)
        ),
        highlight=False,
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The checks as one JSON object.")
@click.option(
    "--udev-rules",
    "udev_rules",
    is_flag=True,
    help="Print the udev rules for the catalogue's USB devices (and where they go), then exit.",
)
@click.option(
    "--ledger",
    "ledger_url",
    help="Ledger database URL to check (default: the settings file's, else the SQLite file).",
)
@guarded
def doctor(ctx: Context | None, as_json: bool, udev_rules: bool, ledger_url: str | None) -> None:
    """Check what stops this computer from working as a station, and say how to fix each thing.

    Looks at: the USB library (libusb), the USB bus, access to plugged-in terminals, posdiag's
    udev rules, serial port access (dialout group), the station key, the ledger, and the clock.
    Nothing is changed.

    Exit codes: 0 when all is well; 1 when any check found a problem or a warning (a warning,
    such as an unsynchronised clock, also needs attention before the station is trusted).
    --udev-rules prints the rules file on stdout (where to install it on stderr) and exits 0.
    """
    if udev_rules:
        _print_udev_rules()
        return
    from .doctor import run_checks

    settings = getattr(ctx, "settings", None)
    url = ledger_url or getattr(settings, "ledger", None) or None
    checks = run_checks(url)
    well = all(check.status == "ok" for check in checks)
    if as_json:
        document = {"ok": well, "checks": [check.as_json() for check in checks]}
        click.echo(json.dumps(document, ensure_ascii=False))
    else:
        out.print(_table(checks))
        out.print(_summary(checks), highlight=False)
    sys.exit(EXIT_READY if well else EXIT_NOT_READY)
