"""The official Adyen Node.js library (``@adyen/api-library``, unmodified) against our nexo
terminal.

If Adyen's own Terminal API client sends an encrypted DiagnosisRequest, a Login, a GetTotals and a
Logout to the simulated terminal and accepts every answer (its HMAC check, its decryption and its
certificate CN check all pass), the simulator speaks nexo as an Adyen terminal does, and
posdiag's driver tests against it mean something. With a wrong passphrase it must get the crypto
error the reference describes (``Nexo Service: crypto error``).

The library is pinned in ``tests/interop/node/package.json`` (and its lock file) and installed by
``.ci/run`` (``npm ci``), with Node from Debian. Without Node or the installed package the module
is skipped locally and fails where ``POSDIAG_REQUIRE_NODE=1`` (CI): there it is a dependency.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posdiag.drivers.nexo.crypto import decrypt_message
from posdiag.drivers.nexo.messages import dumps

NODE_DIR = Path(__file__).with_name("node")
CLIENT = NODE_DIR / "nexo_client.js"
TIMEOUT = 60.0
CALLS = ["Diagnosis", "Login", "GetTotals", "Logout"]


def _node() -> str:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "@adyen" / "api-library").is_dir()
    if node and installed:
        return node
    message = (
        "the Adyen Node library is not installed: install Node and npm, then "
        f"npm ci --prefix {NODE_DIR}"
    )
    if os.environ.get("POSDIAG_REQUIRE_NODE"):
        pytest.fail(message)
    pytest.skip(message)


def _run(terminal: Any, passphrase: str | None = None) -> list[dict[str, Any]]:
    """The Node client's calls against ``terminal``, one parsed JSON object per call."""
    key = terminal.key
    settings = {
        "endpoint": f"https://{terminal.host}:{terminal.port}",
        "ca": str(terminal.ca_path),
        "poiid": terminal.poiid,
        "key": {
            "KeyIdentifier": key.identifier,
            "KeyVersion": key.version,
            "AdyenCryptoVersion": key.crypto_version,
            "Passphrase": passphrase if passphrase is not None else key.passphrase,
        },
        "calls": CALLS,
    }
    done = subprocess.run(
        [_node(), str(CLIENT), json.dumps(settings)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["call"] for line in lines] == CALLS, done.stdout + done.stderr
    return lines


def _body(answer: dict[str, Any], name: str) -> dict[str, Any]:
    assert answer["ok"], answer
    response = answer["response"]["SaleToPOIResponse"]
    assert "NexoBlob" not in response, "the library hands back the decrypted message"
    return dict(response[name])


def test_the_official_library_diagnoses_logs_in_and_reads_totals(
    nexo_terminal: Callable[..., Any],
) -> None:
    terminal = nexo_terminal("unsettled")
    diagnosis, login, totals, logout = _run(terminal)

    body = _body(diagnosis, "DiagnosisResponse")
    assert body["Response"]["Result"] == "Success"
    assert body["POIStatus"]["GlobalStatus"] == "OK"
    header = diagnosis["response"]["SaleToPOIResponse"]["MessageHeader"]
    assert header["POIID"] == terminal.poiid and header["SaleID"] == "NodeInterop"

    assert _body(login, "LoginResponse")["Response"]["Result"] == "Success"
    got = _body(totals, "GetTotalsResponse")
    assert got["Response"]["Result"] == "Success"
    assert got["POIReconciliationID"]
    assert got.get("TransactionTotals"), "the unsettled scenario has pending totals"
    assert _body(logout, "LogoutResponse")["Response"]["Result"] == "Success"
    # The terminal logged the library's SaleID in (GetTotals succeeded) and out again.
    assert "NodeInterop" not in terminal.state.logged_sale_ids
    assert terminal.simulator.device.categories_seen[-4:] == CALLS


def test_the_official_library_gets_the_crypto_error_for_a_wrong_passphrase(
    nexo_terminal: Callable[..., Any],
) -> None:
    terminal = nexo_terminal("activated")
    answers = _run(terminal, passphrase="Wrong-Passphrase-9!")
    for answer in answers:
        assert not answer["ok"], answer
        assert "crypto error" in answer["error"], answer


def test_posdiag_decrypts_what_the_library_encrypts(tmp_path: Path) -> None:
    """The library's own NexoCrypto output, decrypted by posdiag's codec (the other direction)."""
    node = _node()
    script = (
        "const {NexoCrypto} = require('@adyen/api-library');"
        "const msg = {SaleToPOIRequest: {MessageHeader: {ProtocolVersion: '3.0',"
        " MessageClass: 'Service', MessageCategory: 'Diagnosis', MessageType: 'Request',"
        " ServiceID: 'X1', SaleID: 'S', POIID: 'V400m-324688179'},"
        " DiagnosisRequest: {HostDiagnosisFlag: false}}};"
        "const key = {KeyIdentifier: 'kid', KeyVersion: 2, AdyenCryptoVersion: 1,"
        " Passphrase: 'p@ssw0rd123456'};"
        "console.log(JSON.stringify(NexoCrypto.encrypt(msg.SaleToPOIRequest.MessageHeader,"
        " JSON.stringify(msg), key)));"
    )
    done = subprocess.run(
        [node, "-e", script], cwd=NODE_DIR, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    from posdiag.drivers.nexo.crypto import NexoKey

    wire = {"SaleToPOIRequest": json.loads(done.stdout)}
    message, plaintext = decrypt_message(wire, NexoKey("kid", 2, "p@ssw0rd123456"))
    assert message["SaleToPOIRequest"]["DiagnosisRequest"] == {"HostDiagnosisFlag": False}
    assert json.loads(plaintext) == message
    assert dumps(message)  # the decrypted message is a well-formed nexo message for the codec
