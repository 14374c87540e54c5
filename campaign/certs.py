"""Section 5: every byte of a real certificate edited, and the library verify must say no.

A wiped simulated terminal's certificate (the signed JSON file, exactly as written) gets, at
every byte position, a flipped bit, the byte deleted and a space inserted before it; and as a
whole a newline appended and a UTF-8 BOM put in front. Each edited copy goes to
``posdiag.agent.certificate.verify_certificate`` as bytes. Quick mode samples positions.

Defects:
    missed: the edited bytes still verify (a certificate must be checked byte for byte, so a
        whitespace edit is a miss too).
    exception: verify raised instead of saying why the certificate is invalid.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from posdiag.agent.certificate import verify_certificate

from .common import Outputs, SectionResult, Settings, scratch
from .fixtures import make_records

KEY = "certificates"
TITLE = "5 Certificate byte edits"
COLUMNS = ("missed", "exception")

BOM = b"\xef\xbb\xbf"


def _flip(data: bytes, index: int) -> bytes:
    edited = bytearray(data)
    edited[index] ^= 1 << (index % 8)  # each position a different bit, deterministic
    return bytes(edited)


def _delete(data: bytes, index: int) -> bytes:
    return data[:index] + data[index + 1 :]


def _space(data: bytes, index: int) -> bytes:
    return data[:index] + b" " + data[index:]


EDITS: dict[str, Callable[[bytes, int], bytes]] = {
    "flip a bit": _flip,
    "delete the byte": _delete,
    "insert a space before": _space,
}


def _try(result: SectionResult, label: str, edited: bytes, what: str) -> None:
    row = result.row(label)
    row.tried += 1
    try:
        verdict = verify_certificate(edited)
    except Exception as exc:
        row.defect("exception", f"{what}: {type(exc).__name__}: {exc}")
        return
    if verdict.ok:
        row.defect("missed", what)


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """Edit every byte (full) or a sample (quick) of each certificate."""
    rng = settings.rng(KEY)
    result = SectionResult(KEY, TITLE, COLUMNS)
    started = time.monotonic()
    with scratch(settings, "certs") as folder:
        records = make_records(folder, outputs)
        files = records.certificates if not settings.quick else records.certificates[:1]
        for path in files:
            original = path.read_bytes()
            if not verify_certificate(original).ok:
                raise RuntimeError(f"the untouched certificate {path.name} does not verify")
            positions = list(range(len(original)))
            if settings.quick:
                positions = sorted(
                    rng.sample(positions, min(settings.size(300, 0), len(positions)))
                )
            for label, edit in EDITS.items():
                for index in positions:
                    edited = edit(original, index)
                    context = original[max(0, index - 12) : index + 12]
                    _try(result, label, edited, f"{path.name} byte {index} near {context!r}")
            _try(result, "append a newline", original + b"\n", f"{path.name} + newline")
            _try(result, "add a BOM", BOM + original, f"BOM + {path.name}")
        sizes = ", ".join(str(len(p.read_bytes())) for p in files)
        result.rows[0].info = f"{len(files)} certificate(s), {sizes} bytes"
    result.seconds = time.monotonic() - started
    return result
