"""The state of a simulated ZVT terminal, and scenarios that set it up from TOML data.

A scenario file overrides the defaults of ``scenarios/base.toml`` (deep merge), so each one says
only what makes it different: ``activated`` sets a TID and merchant, ``unsettled`` adds pending
transactions, ``no-network`` cuts the host. The state changes as a real terminal's would while
commands run (End-of-Day empties the store, resetting the TID unbinds the merchant…).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..scenario_data import ScenarioError, build, deep_merge, load_toml, toml_names

# Card scheme slots of BMP 60 single totals, in the order the spec lists them.
SCENARIOS = "posdiag.simulators.zvt.scenarios"
SCHEMES = ("girocard", "jcb", "mastercard", "amex", "visa", "diners", "other")


@dataclass
class Transaction:
    """One booked payment waiting in the turnover store for End-of-Day."""

    amount_cents: int
    scheme: str = "girocard"
    receipt_number: int = 0
    trace_number: int = 0


@dataclass
class NetworkInterfaceState:
    """An interface as the printout shows it."""

    name: str
    up: bool = True
    mode: str = "DHCP"
    mac: str = ""
    ip: str = ""
    netmask: str = ""
    gateway: str = ""
    dns: str = ""


@dataclass
class Faults:
    """Faults to inject, mostly as counters that run down as they fire.

    Attributes:
        corrupt_crc: corrupt the CRC of this many outgoing frames (the ECR must NAK).
        drop_ack: leave this many received frames unacknowledged (the ECR must repeat after T2).
        split_writes: send every frame in small pieces.
        stall_mid_frame: pause this many seconds in the middle of the next frame (past T1).
        ack_delay: delay every ACK by this many seconds (past T2 when large).
        answer_delay: delay the first answer (80 00) by this many seconds (past T3 when large).
        garbage: bytes to put on the line before each answer.
        disconnect_after: close the link after this many received commands (a pulled cable).
        silent: never answer anything (a dead or unpowered terminal).
        babble: answer every command with garbage only (wrong protocol or baud rate).
        fail_command: the command this terminal refuses, so a wipe meets a step that fails:
            ``80 00`` then ``06 1E 83`` ("function not possible"); Log-Off and Abort, which end
            at their ``80 00``, get ``84 FF`` instead. Named as ``Message.NAME``
            ("Set/Reset Terminal-ID", "End-of-Day", "Feig vendor request") or by hex code
            ("061B", "06 50"; "0FA10255" for the Feig factory reset alone). State is unchanged.
            Empty: off. Stays armed (a refusal repeats).
        power_loss_at: the command during which the terminal loses power, so a wipe meets an
            interruption: part of the command's effect takes hold (End-of-Day settles the first
            half of the transactions; Set/Reset Terminal-ID changes the TID but not the status
            byte, keys or host data; the Feig factory reset clears TID, keys and status but
            keeps host and merchant data and the registration; Log-Off turns TLV off but keeps
            the config byte and registration; other commands change nothing more than their
            handler does at once), then the link drops where the completion would have gone.
            The state survives for the next connection. Fires once, then clears itself.
        lie_about: the command this terminal acknowledges as done (``80 00`` … ``06 0F``)
            without changing any state, so only reading the state back can catch it.
            Stays armed.
        endless_status: after its ``80 00`` every command that would end in a completion
            sends intermediate status (``04 FF``) forever instead, each well within T4, so only
            the ECR's own ceiling ends it. State is unchanged.
        flood_print: likewise, but print lines (``06 D1``) without end.
        hostile_text: the texts the agent displays (device name and software version of the
            status enquiry, every print line) carry ANSI/OSC escapes, NUL and "²" where digits
            belong, and the printout gains a 5,000-character line (``hostile.py``).
    """

    corrupt_crc: int = 0
    drop_ack: int = 0
    split_writes: bool = False
    stall_mid_frame: float = 0.0
    ack_delay: float = 0.0
    answer_delay: float = 0.0
    garbage: bytes = b""
    disconnect_after: int | None = None
    silent: bool = False
    babble: bool = False
    fail_command: str = ""
    power_loss_at: str = ""
    lie_about: str = ""
    endless_status: bool = False
    flood_print: bool = False
    hostile_text: bool = False


@dataclass
class Timing:
    """How fast the simulated terminal is.

    Attributes:
        baud: serial line speed; 8N2 costs 11 bit times a byte.
        latency: seconds the terminal thinks before each answer.
        host_latency: seconds a host dial-up takes (Diagnosis, End-of-Day).
        scale: multiplies every delay: 0 is as fast as possible (unit tests), 1 is realistic.
    """

    baud: int = 9600
    latency: float = 0.05
    host_latency: float = 1.5
    scale: float = 1.0

    def line_time(self, size: int) -> float:
        """Seconds ``size`` bytes take on the serial line, scaled."""
        return self.scale * size * 11 / self.baud

    def delay(self, seconds: float) -> float:
        """A scaled delay."""
        return self.scale * seconds


@dataclass
class TerminalState:
    """Everything the simulated terminal knows about itself."""

    vendor: str = "FEIG ELECTRONIC"
    model: str = "cVEND plug"
    device_name: str = "cVEND plug"
    serial: str = "17F59B1F"
    sw_version: str = "GER-APP-v2.0.9"
    firmware: str = "cR02.01.01-00.09-2-2"
    sdk: str = "02.01.01.09"
    pinpad_software: str = "SeW-700.02"
    rfid_version: str = "FECLR-02.06.00"
    ext_board: str = "feig-extension"
    password: str = "000000"
    terminal_id: str | None = None
    status_byte: int = 0x00
    device_state: int = 0x00
    keys_present: bool = False
    config_byte: int = 0x86
    tlv_enabled: bool = False
    registered: bool = False
    host_reachable: bool = True
    host_operator: str = ""
    host_address: str = ""
    host_port: int = 0
    merchant_lines: list[str] = field(default_factory=list)
    currency: str = "EUR"
    currency_code: int = 978
    charset: str = "cp437"
    """Character set of the terminal's text (print lines, device name): "cp437" as the spec and
    Feig units, "iso-8859-1" to play a card complete unit."""
    battery_voltage_mv: int | None = 3120
    temperature_c: float | None = 46.8
    interfaces: list[NetworkInterfaceState] = field(default_factory=list)
    modem: bool = False
    tms_url: str = ""
    vendor_commands: bool = True
    transactions: list[Transaction] = field(default_factory=list)
    receipt_counter: int = 1
    trace_counter: int = 1
    faults: Faults = field(default_factory=Faults)
    timing: Timing = field(default_factory=Timing)
    description: str = ""

    @property
    def store_empty(self) -> bool:
        """Whether End-of-Day has nothing to settle."""
        return not self.transactions

    def totals_by_scheme(self) -> tuple[tuple[int, int], ...]:
        """(count, cents) per scheme slot, for BMP 60."""
        slots = {name: [0, 0] for name in SCHEMES}
        for tx in self.transactions:
            slot = slots.get(tx.scheme, slots["other"])
            slot[0] += 1
            slot[1] += tx.amount_cents
        return tuple((count, cents) for count, cents in slots.values())


def _read(name: str) -> dict[str, Any]:
    return load_toml(SCENARIOS, name, "ZVT scenario", exclude=("base",))


def available_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return toml_names(SCENARIOS, exclude=("base",))


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    return build(cls, data, where)


def state_from_dict(data: dict[str, Any], where: str = "scenario") -> TerminalState:
    """Build a TerminalState from merged scenario data, with clear errors for typos."""
    data = dict(data)
    terminal = dict(data.pop("terminal", {}))
    description = data.pop("description", "")
    transactions = [
        _build(Transaction, tx, f"{where} [[transactions]]") for tx in data.pop("transactions", [])
    ]
    interfaces = [
        _build(NetworkInterfaceState, itf, f"{where} [[interfaces]]")
        for itf in data.pop("interfaces", [])
    ]
    faults_data = dict(data.pop("faults", {}))
    if "garbage" in faults_data:
        faults_data["garbage"] = bytes.fromhex(faults_data["garbage"])
    faults = _build(Faults, faults_data, f"{where} [faults]")
    timing = _build(Timing, data.pop("timing", {}), f"{where} [timing]")
    if data:
        raise ScenarioError(f"{where}: unknown sections {', '.join(sorted(data))}")
    state: TerminalState = _build(TerminalState, terminal, f"{where} [terminal]")
    # Imported here: the registry imports this module for every family, and an Android check
    # must not load the ZVT driver package.
    from posdiag.drivers.zvt.charset import check_charset

    try:
        check_charset(state.charset)
    except ValueError as exc:
        raise ScenarioError(f"{where} [terminal] charset: {exc}") from None
    state.transactions = transactions
    state.interfaces = interfaces
    state.faults = faults
    state.timing = timing
    state.description = description
    for number, tx in enumerate(state.transactions, start=1):
        tx.receipt_number = tx.receipt_number or number
        tx.trace_number = tx.trace_number or number
    state.receipt_counter = state.trace_counter = len(state.transactions) + 1
    return state


def load_scenario(name: str, overrides: dict[str, Any] | None = None) -> TerminalState:
    """The named scenario over the base defaults, with optional overrides on top."""
    if name == "base":
        raise ScenarioError("'base' holds the defaults of every ZVT scenario; it is not one itself")
    data = deep_merge(_read("base"), _read(name))
    if overrides:
        data = deep_merge(data, overrides)
    return state_from_dict(data, f"scenario {name!r}")
