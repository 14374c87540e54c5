"""Section 6: hostile devices against the CLI, measured from the outside.

For each hostile simulator fault (ADB ``flood_output``, ``hostile_text``, ``hang``; ZVT
``endless_status``, ``hostile_text``, ``flood_print``; read from the Faults dataclasses, so a
renamed fault shows up as a missing row instead of silently passing), ``posdiag check`` and
``posdiag wipe --yes`` run as subprocesses against ``zvt+sim://``/``adb+sim://`` addresses with a
``--deadline``, then ``posdiag report`` (CSV and JSON, checks and wipes) reads the ledger.
Measured: the child's peak RSS (``wait4``), time to end, control sequences in anything shown
or written (stdout, stderr, certificate JSON and HTML, CSV/JSON reports), "Traceback" on stderr
and the exit code (printed in the row).

Defects:
    memory: peak RSS over 300 MB.
    overtime: the command took longer than its deadline + 10 s.
    control sequence: ESC, another C0 control (except tab and newline), a C1 control or a
        bidi override/isolate in any output.
    traceback: "Traceback" on stderr.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from posdiag.simulators.adb.state import Faults as AdbFaults
from posdiag.simulators.zvt.state import Faults as ZvtFaults

from .common import (
    Outputs,
    SectionResult,
    Settings,
    isolated_env,
    posdiag_cmd,
    run_process,
    scratch,
)

KEY = "hostile"
TITLE = "6 Hostile devices"
COLUMNS = ("memory", "overtime", "control sequence", "traceback")

MAX_RSS_MB = 300.0
DEADLINE_S = 20.0
"""``--deadline`` of every command (quick: 8 s); past it + 10 s is a defect."""
GRACE_S = 10.0
HOSTILE = {
    "adb": ("flood_output", "hostile_text", "hang"),
    "zvt": ("endless_status", "hostile_text", "flood_print"),
}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters no output may carry: C0 (but tab, newline), DEL, C1, bidi marks/overrides.

Carriage returns are C0 too: a device's ``\\r`` can overwrite what the operator reads."""


def controls_in(data: bytes) -> list[str]:
    """The control characters found (as escapes), decoding leniently."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return sorted({f"U+{ord(c):04X}" for c in CONTROL.findall(text)})


def _address(family: str, fault: str) -> str:
    if family == "zvt":
        return f"zvt+sim://activated?{fault}=1"
    return f"adb+sim://activated?model=pax-a920&{fault}=1"


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """Each hostile fault × (check, wipe), then the reports of what was recorded."""
    result = SectionResult(KEY, TITLE, COLUMNS)
    started = time.monotonic()
    deadline = 8.0 if settings.quick else DEADLINE_S
    with scratch(settings, "hostile") as folder:
        home = folder / "home"
        env = isolated_env(home)
        ledger = f"sqlite:///{folder / 'ledger.sqlite3'}"
        out = folder / "certificates"
        for family, faults in HOSTILE.items():
            known = {
                f.name for f in dataclasses.fields(ZvtFaults if family == "zvt" else AdbFaults)
            }
            for fault in faults:
                if fault not in known:
                    row = result.row(f"{family} {fault}")
                    row.tried += 1
                    row.info = "fault missing in the simulator"
                    continue
                address = _address(family, fault)
                commands = {
                    "check": ["check", address, "--deadline", str(deadline)],
                    "wipe": [
                        "wipe",
                        address,
                        "--yes",
                        "--operator",
                        "Campaign",
                        "--confirmed-settled",
                        "--deadline",
                        str(deadline),
                        "--ledger",
                        ledger,
                        "--out",
                        str(out),
                    ],
                }
                for mode, args in commands.items():
                    # quick: the human output of check, the JSON of wipe; full: both of each
                    variants = (mode == "wipe",) if settings.quick else (False, True)
                    for as_json in variants:
                        label = f"{family} {fault}: {mode}{' --json' if as_json else ''}"
                        proc = run_process(
                            [*posdiag_cmd(), *args, *(["--json"] if as_json else [])],
                            env=env,
                            timeout=deadline + GRACE_S + 60,
                        )
                        row = result.row(label)
                        row.tried += 1
                        row.info = (
                            f"exit {proc.returncode}, {proc.seconds:.1f} s, "
                            f"{proc.peak_rss_mb:.0f} MB"
                        )
                        outputs.text(f"{label} stdout", proc.stdout)
                        outputs.text(f"{label} stderr", proc.stderr)
                        if proc.peak_rss_mb > MAX_RSS_MB:
                            row.defect("memory", f"{label}: peak RSS {proc.peak_rss_mb:.0f} MB")
                        if proc.seconds > deadline + GRACE_S or proc.timed_out:
                            row.defect("overtime", f"{label}: {proc.seconds:.1f} s")
                        for stream, data in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                            found = controls_in(data)
                            if found:
                                row.defect("control sequence", f"{label} {stream}: {found}")
                        if b"Traceback" in proc.stderr:
                            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
                            row.defect("traceback", f"{label}: {tail}")
        for path in sorted(out.glob("*")) if out.exists() else []:
            row = result.row("certificates (JSON, HTML, PDF)")
            row.tried += 1
            data = path.read_bytes()
            if path.suffix == ".pdf":  # compressed streams: search what the pages draw
                from posdiag.agent.certificate.pdf import drawn_text

                data = drawn_text(data).encode("latin-1")
            found = controls_in(data)
            if found:
                row.defect("control sequence", f"{path.name}: {found}")
        for kind in ("wipes", "checks"):
            for fmt in ("csv", "json"):
                label = f"posdiag report --kind {kind} --format {fmt}"
                proc = run_process(
                    [
                        *posdiag_cmd(),
                        "report",
                        "--ledger",
                        ledger,
                        "--kind",
                        kind,
                        "--format",
                        fmt,
                        "--include-simulated",
                        "--include-open",
                    ],
                    env=env,
                    timeout=120,
                )
                row = result.row(label)
                row.tried += 1
                lines = proc.stdout.count(b"\n")
                row.info = f"exit {proc.returncode}, {lines} lines"
                outputs.text(label, proc.stdout + proc.stderr)
                found = controls_in(proc.stdout + proc.stderr)
                if found:
                    row.defect("control sequence", f"{label}: {found}")
                if b"Traceback" in proc.stderr:
                    row.defect("traceback", label)
                if fmt == "csv":
                    risky = [
                        cell
                        for line in proc.stdout.decode(errors="replace").splitlines()
                        for cell in line.split(",")
                        if cell[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"-?[\d.]+", cell)
                    ]
                    if risky:
                        row.defect("control sequence", f"{label}: formula cells {risky[:3]}")
        outputs.tree(out)
        outputs.tree(Path(home))
    result.seconds = time.monotonic() - started
    return result
