"""``posdiag simulate nexo`` as a real subprocess: the first line is an address that works."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from click.testing import CliRunner

from posdiag.drivers.address import parse_address
from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message, encrypt_message
from posdiag.drivers.nexo.messages import decode_message, diagnosis_request, dumps, encode_message

POSDIAG = str(Path(sys.executable).with_name("posdiag"))


def _env(tmp_path: Path) -> dict[str, str]:
    home = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "LANG": "C.UTF-8"}
    return {**os.environ, **home, "TMPDIR": str(tmp_path)}


def test_simulate_nexo_prints_a_working_address(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [POSDIAG, "simulate", "nexo", "--scenario", "activated", "--tcp", "127.0.0.1:0",
         "--time-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        parts = urlsplit(line)
        assert parts.scheme == "nexo+https" and parts.hostname == "127.0.0.1"
        assert parts.port and parts.path == ""
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert set(query) == {"poiid", "ca", "key"}
        assert query["poiid"] == "V400m-324688179"
        ca, key_file = Path(query["ca"]), Path(query["key"])
        assert ca.name == "ca.pem" and key_file.parent == ca.parent
        assert ca.parent.parent == tmp_path  # the private directory under TMPDIR
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert ca.parent.stat().st_mode & 0o777 == 0o700
        address = parse_address(line)  # what posdiag check takes, as printed
        assert address.family == "nexo" and address.host_port == ("127.0.0.1", parts.port)
        data = tomllib.loads(key_file.read_text())
        key = NexoKey(data["identifier"], data["version"], data["passphrase"])
        request = diagnosis_request("CLI1", "POSDIAG-CLI", query["poiid"], host_diagnosis=True)
        context = ssl.create_default_context(cafile=str(ca))
        conn = http.client.HTTPSConnection("127.0.0.1", parts.port, context=context, timeout=10)
        try:
            conn.request("POST", "/nexo", body=dumps(encrypt_message(encode_message(request), key)))
            response = conn.getresponse()
            assert response.status == 200
            clear, _ = decrypt_message(json.loads(response.read()), key)
        finally:
            conn.close()
        answer = decode_message(clear)
        assert answer.body["Response"]["Result"] == "Success"
        assert "merchantAccount=AcmeRetail_NL_POS" in answer.body["Response"]["AdditionalResponse"]
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Simulated Adyen V400m" in err
    assert not ca.parent.exists()  # the private directory went with the simulator


def test_list_scenarios_and_usage_errors() -> None:
    from posdiag.agent.cli import main

    runner = CliRunner()
    listed = runner.invoke(main, ["simulate", "nexo", "--list-scenarios"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert "busy" in lines and "printer-fault" in lines
    assert lines[-1] == "models: P400Plus, S1F2, V400m"
    bad = runner.invoke(main, ["simulate", "nexo", "--scenario", "nope"])
    assert bad.exit_code == 2 and "unknown nexo scenario 'nope'" in bad.output
    bad_model = runner.invoke(main, ["simulate", "nexo", "--model", "V999"])
    assert bad_model.exit_code == 2 and "V400m" in bad_model.output
    bad_serial = runner.invoke(main, ["simulate", "nexo", "--serial", "12-34"])
    assert bad_serial.exit_code == 2 and "letters or digits" in bad_serial.output
    bad_fault = runner.invoke(main, ["simulate", "nexo", "--fault", "wrong_kye"])
    assert bad_fault.exit_code == 2 and "wrong_key" in bad_fault.output
    pty = runner.invoke(main, ["simulate", "nexo", "--pty"])
    assert pty.exit_code == 2
    event_url = runner.invoke(main, ["simulate", "zvt", "--event-url", "http://x"])
    assert event_url.exit_code == 2
