"""Real records to attack: a ledger and certificates made by real wipes of simulated terminals.

Sections 4 (ledger tampering) and 5 (certificate edits) need content posdiag itself wrote, not
hand-made rows: checks, wipes (one ZVT, one Android) and a refused wipe (unsettled money without
consent), all through the agent API into one SQLite ledger, signed with a throwaway station key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posdiag.agent.certificate import StationKey
from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.report import record_report
from posdiag.agent.wipe import Outcome, WipeOptions, WipeSession

from . import sims
from .common import Outputs


@dataclass
class Records:
    """What :func:`make_records` wrote.

    Attributes:
        db: the SQLite ledger file.
        url: its SQLAlchemy URL.
        certificates: the signed certificate files (JSON), one per wipe that ran.
        outcomes: the outcome of each wipe, in order.
    """

    db: Path
    url: str
    certificates: list[Path]
    outcomes: list[str]


def make_records(folder: Path, outputs: Outputs, password: str = "483921") -> Records:
    """Check two terminals, wipe two, refuse one; everything recorded in one ledger."""
    policy = load_policy()
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "ledger.sqlite3"
    url = sqlite_url(db)
    key = StationKey.load_or_create(folder / "station_ed25519.pem")
    certificates: list[Path] = []
    outcomes: list[str] = []
    with Ledger(url) as ledger:
        for sim in (sims.zvt("activated", {"password": password}), sims.adb("fresh", "sunmi-p2")):
            outputs.secret(password, getattr(sim.state, "terminal_id", None))
            report = inspect_terminal(sim.terminal(), policy, simulated=True)
            record_report(ledger, report, "Campaign Operator")
            sim.stop()
        plans = (
            (sims.zvt("activated", {"password": password}), False),
            (sims.adb("activated", "pax-a920"), False),
            (sims.zvt("unsettled", {"password": password}), False),  # refused: money, no consent
        )
        for sim, settle in plans:
            options = WipeOptions(
                operator="Campaign Operator",
                assume_yes=True,
                settle=settle,
                confirmed_settled=True,
                out_dir=folder / "certificates",
                location="campaign bench",
            )
            result = WipeSession(
                sim.terminal(), policy, options, ledger=ledger, key=key, simulated=True
            ).run()
            outcomes.append(result.outcome.value)
            if result.certificate is not None:
                certificates.append(result.certificate)
            sim.stop()
    if Outcome.REFUSED.value not in outcomes or not certificates:
        raise RuntimeError(f"the records are not what the campaign needs: {outcomes}")
    outputs.tree(folder)
    return Records(db, url, certificates, outcomes)
