"""Section 7: every output of the campaign grepped for the secrets it used.

What is grepped: the stdout and stderr of every subprocess the sections ran, every file they
wrote (ledgers, certificates and their HTML, reports, logs; copied aside as they were made) and
this section's own probes: ``check``, ``wipe``, ``station``, ``report`` and ``verify`` against a
ZVT terminal on loopback TCP whose password is in the address (``?password=``), plus a check
with a wrong ``--password``. Secrets: the ZVT passwords used, the full TIDs and MIDs the
simulators hold, and the ADB/station private key material found in the run's home folders
(the key files themselves are the only place it may be). A secret counts when it stands as a
word of its own (not inside a longer run of letters and digits, such as a hash).

Defects:
    password / TID or MID / key material: an output that contains one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from posdiag.agent.ledger import sqlite_url
from posdiag.drivers.zvt.connection import Link
from posdiag.simulators import registry
from posdiag.simulators.adb.state import load_android
from posdiag.simulators.attach import TcpAttachment
from posdiag.simulators.zvt.state import load_scenario

from .common import (
    Outputs,
    SectionResult,
    Settings,
    isolated_env,
    posdiag_cmd,
    run_process,
    scratch,
)

KEY = "secrets"
TITLE = "8 Secrets grep"
COLUMNS = ("password", "TID or MID", "key material")

PASSWORD = "583147"
WRONG_PASSWORD = "902613"
KEY_FILES = ("adbkey", "adbkey.pub")
MID = re.compile(r"MID-?\d{3,}")


def _probes(settings: Settings, outputs: Outputs, folder: Path) -> None:
    """The commands whose outputs most tempt a leak, against a password-protected terminal."""
    home = folder / "home"
    env = isolated_env(home)
    sim = registry.create_zvt(
        "activated", {"password": PASSWORD, "time_scale": "0", "serial": "5EC12E70"}, Link.TCP
    )
    outputs.secret(PASSWORD, WRONG_PASSWORD, sim.state.terminal_id)
    attachment = TcpAttachment(sim, "127.0.0.1", 0)
    host, port = attachment.start()
    address = f"zvt+tcp://{host}:{port}?password={PASSWORD}&t2=1&t3=3"
    bare = f"zvt+tcp://{host}:{port}?t2=1&t3=3"
    ledger = sqlite_url(folder / "ledger.sqlite3")
    out = folder / "certificates"
    runs = [
        ["check", address],
        ["check", address, "--json"],
        ["check", bare, "--password", WRONG_PASSWORD],
        ["check", f"{bare}&password={WRONG_PASSWORD}", "--json"],
        ["station", address, "--json", "--ledger", ledger, "--operator", "Campaign"],
        ["wipe", address, "--yes", "--operator", "Campaign", "--ledger", ledger, "--out", str(out)],
        ["report", "--ledger", ledger, "--kind", "checks", "--include-simulated"],
        ["report", "--ledger", ledger, "--format", "json", "--include-simulated"],
        ["verify", "--ledger", ledger],
    ]
    try:
        for args in runs:
            proc = run_process([*posdiag_cmd(), *args], env=env, timeout=120)
            outputs.text(f"posdiag {args[0]} stdout", proc.stdout)
            outputs.text(f"posdiag {args[0]} stderr", proc.stderr)
        for certificate in sorted(out.glob("*.json")) if out.exists() else []:
            proc = run_process([*posdiag_cmd(), "verify", str(certificate)], env=env, timeout=60)
            outputs.text("posdiag verify CERT stdout", proc.stdout)
    finally:
        attachment.stop()
    outputs.tree(folder)


def _kind(name: str) -> str:
    """Which row a collected file counts in, by its name."""
    if name.endswith((".sqlite3", ".db", "-wal", "-shm", "-journal")):
        return "ledger files"
    if name.endswith(".html"):
        return "certificate HTML"
    if name.endswith(".pdf"):
        return "certificate PDF"
    if name.endswith(".json"):
        return "certificates (JSON)"
    return "other files (reports, logs, fleet files)"


def _key_material(paths: list[Path]) -> set[str]:
    """Lines of private key files (base64 bodies): they must appear nowhere else."""
    found: set[str] = set()
    for path in paths:
        try:
            text = path.read_text(encoding="ascii", errors="ignore")
        except OSError:
            continue
        if "PRIVATE KEY" in text:
            found.update(
                line.strip()
                for line in text.splitlines()
                if len(line.strip()) >= 40 and "-----" not in line
            )
    return found


def _is_key_file(path: Path) -> bool:
    name = path.name.split("-", 1)[-1]
    return name in KEY_FILES or name.endswith(".pem")


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """Run the probes, then grep everything collected by the whole campaign."""
    result = SectionResult(KEY, TITLE, COLUMNS)
    started = time.monotonic()
    with scratch(settings, "secrets") as folder:
        _probes(settings, outputs, folder)
        outputs.secret(load_scenario("activated").terminal_id)
        for model in ("pax-a920", "sunmi-p2", "android-generic"):
            state = load_android("activated", model)
            for content in state.files.values():
                outputs.secret(*MID.findall(content))
        key_files = [path for path in outputs.files if _is_key_file(path)]
        keys = _key_material(key_files)
        passwords = {s for s in outputs.secrets if s.isdigit() and len(s) == 6}
        ids = outputs.secrets - passwords
        patterns = {
            "password": passwords,
            "TID or MID": ids,
            "key material": keys,
        }
        compiled = {
            column: [
                (
                    value,
                    re.compile(
                        rb"(?<![0-9A-Za-z.])" + re.escape(value.encode()) + rb"(?![0-9A-Za-z])"
                    ),
                )
                for value in sorted(values)
            ]
            for column, values in patterns.items()
        }
        sources: list[tuple[str, str, bytes]] = [
            ("subprocess output", where, data) for where, data in outputs.texts
        ]
        for path in outputs.files:
            if _is_key_file(path):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if path.suffix == ".pdf":  # compressed streams: search what the pages draw
                from posdiag.agent.certificate.pdf import drawn_text

                data = drawn_text(data).encode("latin-1")
            sources.append((_kind(path.name), path.name, data))
        for kind, where, data in sources:
            row = result.row(kind)
            row.tried += 1
            for column, checks in compiled.items():
                for value, pattern in checks:
                    match = pattern.search(data)
                    if match:
                        start = max(0, match.start() - 40)
                        context = data[start : match.end() + 20].decode("utf-8", "replace")
                        row.defect(column, f"{where}: {value[:12]}… in {context!r}")
                        break
        if result.rows:
            result.rows[
                0
            ].info = f"{len(passwords)} passwords, {len(ids)} TIDs/MIDs, {len(keys)} key lines"
    result.seconds = time.monotonic() - started
    return result
