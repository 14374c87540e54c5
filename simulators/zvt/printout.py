"""Render the simulated terminal's system-configuration printout in the real Feig layout.

Forty columns, label left, value right-aligned, German labels and section headings as a real
cVEND prints them (see the EVerest capture read in tests), so the driver's vendor label set is
exercised against the same shape it meets in the field. Values come from the live state: after a
TID reset the printout no longer shows a Terminal-ID, exactly as a real unit would.
"""

from __future__ import annotations

import time

from .state import TerminalState

WIDTH = 40


def _row(label: str, value: object) -> str:
    text = str(value)
    return label + text.rjust(max(1, WIDTH - len(label)))


def _heading(title: str) -> str:
    return f"** {title} **".center(WIDTH)


def _wrap(text: str) -> list[str]:
    return [text[i : i + WIDTH] for i in range(0, len(text), WIDTH)] or [""]


def render_printout(state: TerminalState, now: float | None = None) -> list[str]:
    """The printout lines for ``state``."""
    stamp = time.localtime(now)
    lines = [
        _heading("Konfiguration"),
        _row(time.strftime("%d.%m.%Y", stamp), time.strftime("%H:%M:%S", stamp)),
        _row("PIN-Pad Software:", state.pinpad_software),
        _row("PIN-Pad Release:", "000.00008"),
        "",
        "",
        _row("RFID-Leser Ver.:", state.rfid_version),
        _row("Firmware:", state.firmware),
        _row("SDK:", state.sdk),
        _row("Terminal Version:", state.sw_version),
        _row("Terminal Serien-Nr.:", state.serial),
        _row("Hardware:", state.model),
        _row("Ext. Board:", state.ext_board),
    ]
    if state.battery_voltage_mv is not None:
        lines.append(_row("Batteriespannung (V):", f"{state.battery_voltage_mv / 1000:.2f}"))
    if state.temperature_c is not None:
        lines.append(_row("Modultemperatur (C):", f"{state.temperature_c:.1f}"))
    lines += ["", "", _heading("Host-Konfiguration")]
    if state.host_operator:
        lines.append(_row("BetreiberName", state.host_operator))
    if state.terminal_id:
        lines.append(_row("Terminal-ID", state.terminal_id))
    if state.merchant_lines:
        lines.append("")
        lines += [line[:WIDTH] for line in state.merchant_lines]
    lines += ["", _row("Währung:", state.currency), "", ""]
    lines.append(_heading("Kommunikationsparameter"))
    if state.host_address:
        lines.append(_row("IP:", state.host_address))
        lines.append(_row("Port:", state.host_port))
        lines.append(_row("SSL:", "ja"))
    lines += ["", "", _heading("Terminal-Konfiguration")]
    for itf in state.interfaces:
        lines.append(_row(f"{itf.name}:", f"{'UP' if itf.up else 'DOWN'}, {itf.mode}"))
        if itf.mac:
            lines.append(_row("MAC-Adresse:", itf.mac))
        if itf.up and itf.ip:
            lines.append(_row("Eigene IP-Adresse:", itf.ip))
            lines.append(_row("Netzmaske:", itf.netmask))
        if itf.gateway:
            lines.append(_row("Gateway:", itf.gateway))
        if itf.dns:
            lines.append(_row("DNS1:", itf.dns))
        lines.append("")
    lines.append(_row("Modemkonfiguration:", "ja" if state.modem else "nein"))
    lines.append("")
    if state.tms_url:
        lines.append(_row("Service Center:", ""))
        lines += _wrap(state.tms_url)
    lines += ["", "", _heading("Kassen-Konfiguration")]
    lines.append(_row("Kassenart", "ZVT"))
    lines.append(_row("Schnittstelle", f"{state.timing.baud} 8N2"))
    lines.append("")
    lines.append(_row("Kassenart", "ZVT"))
    lines.append(_row("Server Port:", 20007))
    return [line.rstrip() for line in lines]
