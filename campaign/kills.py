"""Section 3: the station and a single wipe SIGKILLed, restarted, and their records audited.

Station rounds: ``posdiag station --mode wipe --batch ID --ledger … --out … --json ADDRESSES``
as a subprocess on a rack of simulated terminals that live in *this* process behind loopback
TCP ports (so their state survives the kill, as real terminals' would), killed with SIGKILL at a
random moment, restarted with the same ``--batch`` until a run completes; then the ledger, the
certificate folder and the simulators are audited. Fleet rounds do the same with ``--fleet
FILE`` (simulators inside the station, lost with it), where only the ledger side is audited.

Step kills: a single ``posdiag wipe`` against a slowed-down simulator, killed right after its
k-th journal write (watched through a read-only connection to the ledger), for every k of an
uninterrupted wipe (quick: a few), then run again until it finishes.

Defects:
    lost record: a terminal erased on the simulator with no erased run in the ledger.
    duplicated wipe: two erased runs, or two certificates, for one serial in one batch.
    stuck run: a run ``running`` or ``certifying`` after the final completed run.
    cert/row mismatch: a certificate file without its row, or a row (or erased run) without
        its file.
    verify fails: ``posdiag verify --ledger`` exits non-zero on the untouched ledger.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posdiag.agent.ledger import sqlite_url
from posdiag.drivers.zvt.connection import Link
from posdiag.simulators import registry
from posdiag.simulators.attach import TcpAttachment

from .common import (
    Outputs,
    SectionResult,
    Settings,
    isolated_env,
    posdiag_cmd,
    run_process,
    scratch,
)

KEY = "kills"
TITLE = "3 Station kills"
COLUMNS = ("lost record", "duplicated wipe", "stuck run", "cert/row mismatch", "verify fails")

ERASED = ("erased", "erased_with_exceptions")
RUN_TIMEOUT_S = 180.0
SLOW_ZVT = {"time_scale": "0.2", "latency": "0.25", "baud": "200000"}
"""50 ms a command and 0.3 s a host dial-up: slow enough that kills land between the steps."""
SLOW_ADB = {"time_scale": "1", "latency": "0.03"}
"""30 ms a command, as a real unit's shell."""


@dataclass
class Rack:
    """Simulated terminals on loopback TCP ports, alive across the station's kills."""

    addresses: list[str]
    sims: list[Any]
    serials: list[str]
    families: list[str]
    attachments: list[TcpAttachment]
    bound: list[bool] = dataclasses.field(default_factory=list)  # merchant data at the start

    def stop(self) -> None:
        """Close every listener."""
        for attachment in self.attachments:
            attachment.stop()


def start_rack(rng: random.Random, round_no: int, outputs: Outputs, size: int) -> Rack:
    """ZVT (activated, some unsettled) and Android (fresh, activated) units, distinct serials."""
    rack = Rack([], [], [], [], [])
    for index in range(size):
        kind = rng.choice(("zvt", "zvt", "zvt-unsettled", "adb-fresh", "adb-activated"))
        serial = f"{0xCA000000 + round_no * 64 + index:08X}"
        if kind.startswith("zvt"):
            password = f"{rng.randrange(1_000_000):06d}"
            scenario = "unsettled" if kind == "zvt-unsettled" else "activated"
            sim = registry.create_zvt(
                scenario, {**SLOW_ZVT, "password": password, "serial": serial}, Link.TCP
            )
            outputs.secret(password, sim.state.terminal_id)
            family = "zvt"
        else:
            scenario = kind.removeprefix("adb-")
            serial = f"CAMP{serial}"
            sim = registry.create_adb(scenario, "pax-a920", {**SLOW_ADB, "serial": serial})
            family = "adb"
        attachment = TcpAttachment(sim, "127.0.0.1", 0)
        host, port = attachment.start()
        if family == "zvt":
            address = f"zvt+tcp://{host}:{port}?password={password}&t2=1&t3=3&t4=20"
        else:
            address = f"adb+tcp://{host}:{port}?timeout=3"
        rack.addresses.append(address)
        rack.sims.append(sim)
        rack.serials.append(serial)
        rack.families.append(family)
        rack.attachments.append(attachment)
        rack.bound.append(not sim_erased(family, sim))
    return rack


def sim_erased(family: str, sim: Any) -> bool:
    """Whether the simulator's state is wiped (its merchant binding gone)."""
    state = sim.state
    if family == "zvt":
        return not (state.terminal_id and state.terminal_id.strip("0 ")) and not state.transactions
    payment = state.app(state.payment_package)
    return payment is None or not payment.has_data


# --- the records ---------------------------------------------------------------------------


@dataclass
class RunRow:
    """One wipe run as the ledger holds it."""

    id: int
    serial: str
    status: str
    outcome: str | None
    batch: str | None


def read_ledger(db: Path) -> tuple[list[RunRow], list[tuple[int, str, str]]]:
    """The runs (with their device's serial and batch) and certificates (run, path, sha256)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs = []
        for run_id, serial, status, outcome, options in conn.execute(
            "SELECT r.id, d.serial, r.status, r.outcome, r.options_json "
            "FROM wipe_runs r JOIN devices d ON d.id = r.device_id ORDER BY r.id"
        ):
            try:
                batch = json.loads(options or "{}").get("batch")
            except ValueError:
                batch = None
            runs.append(RunRow(run_id, serial, status, outcome, batch))
        certs = list(conn.execute("SELECT run_id, path, sha256 FROM certificates"))
    finally:
        conn.close()
    return runs, certs


def audit(
    result: SectionResult,
    label: str,
    db: Path,
    out: Path,
    home: Path,
    outputs: Outputs,
    batch: str | None,
    truth: list[tuple[str, str, Any]] | None,
) -> None:
    """Check the invariants after the final completed run; ``truth``: (family, serial, sim)."""
    import hashlib

    row = result.row(label)
    runs, certs = read_ledger(db)
    in_batch = [run for run in runs if batch is None or run.batch == batch]
    for run in runs:
        if run.status in ("running", "certifying"):
            row.defect("stuck run", f"{label}: run {run.id} of {run.serial} is {run.status}")
    erased_runs = Counter(run.serial for run in in_batch if run.outcome in ERASED)
    by_run = {run.id: run for run in runs}
    cert_serials = Counter(by_run[run_id].serial for run_id, _, _ in certs if run_id in by_run)
    for serial, count in erased_runs.items():
        if count > 1:
            row.defect("duplicated wipe", f"{label}: {count} erased runs for {serial}")
    for serial, count in cert_serials.items():
        if count > 1:
            row.defect("duplicated wipe", f"{label}: {count} certificates for {serial}")
    recorded = {Path(path).name: (run_id, sha) for run_id, path, sha in certs}
    files = {path.name: path for path in out.glob("*.json")} if out.exists() else {}
    for name, path in files.items():
        if name not in recorded:
            row.defect("cert/row mismatch", f"{label}: {name} has no row")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != recorded[name][1]:
            row.defect("cert/row mismatch", f"{label}: {name} differs from its recorded hash")
    for name in recorded:
        if name not in files:
            row.defect("cert/row mismatch", f"{label}: row for {name} but no file")
    certified = {run_id for run_id, _, _ in certs}
    for run in runs:
        if run.outcome in ERASED and run.id not in certified:
            row.defect(
                "cert/row mismatch", f"{label}: run {run.id} {run.outcome} without certificate"
            )
    if truth is not None:
        for family, serial, sim in truth:
            in_ledger = any(r.serial == serial and r.outcome in ERASED for r in runs)
            if sim_erased(family, sim) and not erased_runs.get(serial) and not in_ledger:
                row.defect("lost record", f"{label}: {serial} erased on the simulator, no run")
    proc = run_process(
        [*posdiag_cmd(), "verify", "--ledger", sqlite_url(db)], env=isolated_env(home), timeout=120
    )
    outputs.text(f"{label} verify (stdout)", proc.stdout)
    outputs.text(f"{label} verify (stderr)", proc.stderr)
    if proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace")[-200:]
        row.defect("verify fails", f"{label}: exit {proc.returncode}: {tail}")


# --- killing -------------------------------------------------------------------------------


def run_until(
    args: list[str], env: dict[str, str], kill_after: float | None, outputs: Outputs, what: str
) -> bool:
    """Start; SIGKILL after ``kill_after`` s (None: let it finish). True when it was killed."""
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    try:
        out, err = proc.communicate(timeout=kill_after if kill_after is not None else RUN_TIMEOUT_S)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        killed = kill_after is not None
    outputs.text(f"{what} (stdout)", out)
    outputs.text(f"{what} (stderr)", err)
    return killed


def station_round(
    settings: Settings,
    result: SectionResult,
    outputs: Outputs,
    rng: random.Random,
    round_no: int,
    kills: int,
    fleet: bool,
) -> int:
    """One batch killed ``kills`` times, then completed and audited; returns kills landed."""
    label = "station, fleet in the station" if fleet else "station, terminals on TCP"
    with scratch(settings, f"station-{round_no}") as folder:
        home = folder / "home"
        env = isolated_env(home)
        db, out = folder / "ledger.sqlite3", folder / "certificates"
        batch = f"campaign-{settings.seed}-{round_no}"
        rack: Rack | None = None
        common = [
            *posdiag_cmd(),
            "station",
            "--mode",
            "wipe",
            "--yes",
            "--operator",
            "Campaign",
            "--settle",
            "--batch",
            batch,
            "--ledger",
            sqlite_url(db),
            "--out",
            str(out),
            "--json",
        ]
        if fleet:
            fleet_file = folder / "fleet.toml"
            fleet_file.write_text(
                '[[terminal]]\nscenario = "activated"\ncount = 3\n'
                'options = { time_scale = "0.2", latency = "0.25", baud = "200000" }\n\n'
                '[[terminal]]\nfamily = "adb"\nmodel = "sunmi-p2"\nscenario = "fresh"\n'
                'count = 2\noptions = { time_scale = "1", latency = "0.03" }\n',
                encoding="utf-8",
            )
            args = [*common, "--fleet", str(fleet_file)]
        else:
            rack = start_rack(rng, round_no, outputs, size=5)
            args = [*common, *rack.addresses]
        landed = 0
        try:
            row = result.row(label)
            for attempt in range(kills + 6):
                # within a fleet run (~3 s now that a check asks only what it needs)
                kill_after = rng.uniform(0.4, 2.0) if attempt < kills else None
                killed = run_until(args, env, kill_after, outputs, f"{label} round {round_no}")
                if killed:
                    landed += 1
                    row.tried += 1
                if not killed and attempt >= kills:
                    break
            truth = (
                None
                if rack is None
                else [  # only terminals that held merchant data can have been erased
                    (family, serial, sim)
                    for family, serial, sim, bound in zip(
                        rack.families, rack.serials, rack.sims, rack.bound, strict=True
                    )
                    if bound
                ]
            )
            audit(result, label, db, out, home, outputs, batch, truth)
            outputs.tree(out)
            outputs.tree(home)
        finally:
            if rack is not None:
                rack.stop()
        return landed


def _journal_events(db: Path) -> int:
    """How many journal writes a wipe made so far (steps started and finished, runs closed)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            (steps,) = conn.execute(
                "SELECT count(started_at) + count(finished_at) FROM wipe_steps"
            ).fetchone()
            (closed,) = conn.execute(
                "SELECT count(*) FROM wipe_runs WHERE status <> 'running'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(steps) + int(closed)


def wipe_kill(
    settings: Settings, result: SectionResult, outputs: Outputs, family: str, boundary: int | None
) -> int:
    """One ``posdiag wipe``, killed after journal write ``boundary`` (None: learn the count)."""
    label = f"single wipe ({family}) killed at every step boundary"
    with scratch(settings, f"wipe-{family}") as folder:
        home = folder / "home"
        env = isolated_env(home)
        db, out = folder / "ledger.sqlite3", folder / "certificates"
        if family == "zvt":
            password = "271828"
            sim = registry.create_zvt(
                "activated", {**SLOW_ZVT, "password": password, "serial": "CA11AB1E"}, Link.TCP
            )
            outputs.secret(password, sim.state.terminal_id)
        else:
            sim = registry.create_adb("activated", "sunmi-p2", {**SLOW_ADB, "serial": "CAMPWIPE1"})
        attachment = TcpAttachment(sim, "127.0.0.1", 0)
        host, port = attachment.start()
        address = (
            f"zvt+tcp://{host}:{port}?password={password}&t2=1&t3=3&t4=20"
            if family == "zvt"
            else f"adb+tcp://{host}:{port}?timeout=3"
        )
        args = [
            *posdiag_cmd(),
            "wipe",
            address,
            "--yes",
            "--operator",
            "Campaign",
            "--confirmed-settled",
            "--ledger",
            sqlite_url(db),
            "--out",
            str(out),
            "--json",
        ]
        try:
            if boundary is None:
                run_until(args, env, None, outputs, label)
                return _journal_events(db)
            proc = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                if _journal_events(db) >= boundary:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
            stdout, stderr = proc.communicate()
            outputs.text(f"{label} killed (stdout)", stdout)
            outputs.text(f"{label} killed (stderr)", stderr)
            row = result.row(label)
            row.tried += 1
            runs, _ = read_ledger(db)
            if any(r.status in ("running", "certifying") for r in runs) or not any(
                r.outcome in ERASED for r in runs
            ):
                # something is left to resume: run it again, as an operator would. When the
                # kill landed only after the wipe had finished (a loaded machine is late by a
                # few ms), there is nothing to resume, and a new wipe of the clean terminal
                # would rightly be a second run: not a duplicate to count.
                for _ in range(3):
                    if not run_until(args, env, None, outputs, label):
                        break
            audit(result, label, db, out, home, outputs, None, None)
            runs, _ = read_ledger(db)
            if sim_erased(family, sim) and not any(r.outcome in ERASED for r in runs):
                row.defect("lost record", f"{label}: killed at write {boundary}, no erased run")
            outputs.tree(out)
            return boundary
        finally:
            attachment.stop()


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """Station rounds (quick 1 + 1 fleet, full 8 + 2) and a single wipe killed at its steps."""
    rng = settings.rng(KEY)
    result = SectionResult(KEY, TITLE, COLUMNS)
    started = time.monotonic()
    rounds, fleet_rounds = settings.size(1, 8), settings.size(1, 2)
    per_round = settings.size(2, 3)
    landed = 0
    for round_no in range(rounds):
        landed += station_round(settings, result, outputs, rng, round_no, per_round, fleet=False)
    for round_no in range(fleet_rounds):
        landed += station_round(
            settings, result, outputs, rng, 100 + round_no, per_round, fleet=True
        )
    for family in ("zvt",) if settings.quick else ("zvt", "adb"):
        events = wipe_kill(settings, result, outputs, family, None)
        boundaries = list(range(1, events + 1))
        if settings.quick:
            boundaries = sorted(rng.sample(boundaries, min(settings.size(2, 0), len(boundaries))))
        for boundary in boundaries:
            wipe_kill(settings, result, outputs, family, boundary)
    if result.rows:
        result.rows[0].info = f"{landed} station kills landed"
    result.seconds = time.monotonic() - started
    return result
