"""Start-up stays lazy: importing the CLI loads no driver, database, crypto, USB or logger.

``posdiag --version`` and ``posdiag list`` are measured by the benchmark (figure 5); what keeps
them fast is that the command line imports only what every command needs, and each command
imports the rest itself. This runs in a fresh interpreter, because the test session has long
imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Modules only some commands need (check/wipe: drivers; wipe/verify/report: database and crypto;
# station: rich.live; list: pyusb and structlog once logging is configured).
LAZY = (
    "sqlalchemy",
    "cryptography",
    "rich.live",
    "rich.table",
    "usb",
    "libusb_package",
    "structlog",
    "asyncio",
    "tomllib",
    "posdiag.agent.connect",
    "posdiag.agent.inspect",
    "posdiag.agent.ledger",
    "posdiag.agent.certificate",
    "posdiag.agent.station",
    "posdiag.drivers.adb",
    "posdiag.drivers.zvt",
    "posdiag.drivers.transport",
    "posdiag.drivers.catalogue",
    "posdiag.simulators",
)

PROBE = (
    "import json, sys\n"
    "import posdiag.agent.cli\n"
    "print(json.dumps(sorted(set(sys.modules) & set(json.loads(sys.argv[1])))))\n"
)


def loaded_by(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(LAZY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_importing_the_cli_loads_none_of_the_heavy_modules() -> None:
    assert loaded_by(PROBE) == []


@pytest.mark.parametrize("module", ["posdiag.agent.logs", "posdiag.agent.report"])
def test_shared_agent_modules_do_not_pull_in_drivers_or_structlog(module: str) -> None:
    code = PROBE.replace("posdiag.agent.cli", module)
    assert loaded_by(code) == []
