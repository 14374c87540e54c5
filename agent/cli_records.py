"""The evidence commands: ``verify`` (a certificate or the ledger), ``station-key``, ``report``.

What a depot hands over and what a vendor checks: the signed certificate, the station's public
key that checks it, and the batch manifest built from the ledger. Split from :mod:`.cli` so that
module keeps to checking and wiping terminals.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from posdiag.drivers.i18n import _, language, ngettext

from .cli_common import EXIT_NOT_READY, EXIT_USAGE, Context, err, fail, guarded, out

__all__ = ["report", "station_key", "verify"]


# --- verify ------------------------------------------------------------------------------------


@click.command()
@click.argument("certificate", required=False, type=click.Path(path_type=Path))
@click.option("--public-key", type=click.Path(path_type=Path), help="Trust only this signer.")
@click.option(
    "--ledger",
    "ledger_url",
    is_flag=False,
    flag_value="",
    default=None,
    help="Verify the ledger (optional URL); with a certificate, also check that the ledger "
    "recorded exactly this file.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object (schema posdiag.verify/1): the verdict and the full certificate.",
)
@guarded
def verify(
    ctx: Context,
    certificate: Path | None,
    public_key: Path | None,
    ledger_url: str | None,
    as_json: bool,
) -> None:
    """Check a certificate (signature and exact bytes), or every record of the ledger.

    Prints the verdict (valid or not, signed by whose key), then who wiped which terminal,
    when, how and with what outcome; --json prints everything as one object.

    Exit codes: 0 valid, 1 invalid (modified, wrong signer, tampered ledger), 2 usage error.
    """
    from rich.cells import cell_len

    from .certificate import OLD_FORMAT_NOTE, verify_certificate
    from .certificate.summary import (
        SCHEMA as VERIFY_SCHEMA,
    )
    from .certificate.summary import (
        Line,
        signer_of,
        station_public_key,
        summary_lines,
        verdict_lines,
        verify_json,
    )
    from .integrity import certificate_in_ledger, ledger_lines
    from .ledger import Ledger

    if certificate is None:
        if ledger_url is None:
            raise click.UsageError(_("give a certificate file, or --ledger"))
        # a bare --ledger means this station's ledger: the settings' one, else the default
        with Ledger(ledger_url or getattr(ctx.settings, "ledger", None)) as ledger:
            result = ledger.verify()
        lines = ledger_lines(result)
        if as_json:
            payload = {"schema": VERIFY_SCHEMA, "valid": result.ok, "ledger": lines}
            click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        else:
            out.print(Text(lines[0], style="green" if result.ok else "bold red"))
            for line in lines[1:]:
                out.print(Text(line))
        if not result.ok:
            sys.exit(EXIT_NOT_READY)
        return
    try:
        data = certificate.read_bytes()
        trusted = public_key.read_text(encoding="utf-8") if public_key else None
    except OSError as exc:
        fail(
            _("cannot read {path}: {why}").format(
                path=exc.filename or certificate, why=exc.strerror or exc
            ),
            EXIT_USAGE,
            ctx,
        )
    except UnicodeDecodeError:
        fail(
            _("{path} is not a public key file (not UTF-8 text)").format(path=public_key),
            EXIT_USAGE,
            ctx,
        )
    checked = verify_certificate(data, trusted)
    station = None if trusted is not None else station_public_key()
    signer = signer_of(data, checked, trusted is not None, station)
    recorded: tuple[bool, str] | None = None
    if checked.ok and ledger_url is not None:
        with Ledger(ledger_url or getattr(ctx.settings, "ledger", None)) as ledger:
            found = certificate_in_ledger(ledger, (checked.content or {}).get("report_id"), data)
        recorded = (found.ok, found.reason)
    valid = checked.ok and (recorded is None or recorded[0])
    if as_json:
        payload = verify_json(certificate, checked, signer, recorded)
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        if not valid:
            sys.exit(EXIT_NOT_READY)
        return
    tones = {"ok": "green", "warn": "yellow", "bad": "bold red", None: ""}
    head = verdict_lines(checked, signer)
    out.print(Text(head[0].value, style="bold " + tones[head[0].tone]), highlight=False)
    notes = head[1:]
    if checked.old_format:  # posdiag.certificate/1: values signed, the file's form not
        notes.append(Line("", _("note: {note}").format(note=_(OLD_FORMAT_NOTE)), "warn"))
    if recorded is not None:
        if recorded[0]:
            notes.append(Line("", _("ledger: {reason}").format(reason=recorded[1]), "ok"))
        else:
            notes.append(
                Line("", _("NOT IN THE LEDGER: {reason}").format(reason=recorded[1]), "bad")
            )
    for note in notes:
        out.print(Text("  " + note.value, style=tones[note.tone]), highlight=False)
    if not checked.ok:  # unverified content is never shown
        sys.exit(EXIT_NOT_READY)
    rows = summary_lines(checked.content or {})
    width = max(cell_len(row.label) for row in rows)
    out.print()
    room = max(20, out.width - width - 2)
    for row in rows:  # labels padded by display width: Chinese labels are two cells a character
        label = Text(row.label + " " * (width - cell_len(row.label) + 2), style="bold")
        for part in Text(row.value, style=tones[row.tone]).wrap(out, room):
            part.rstrip()
            out.print(label + part, highlight=False)
            label = Text(" " * (width + 2))
    if not valid:
        sys.exit(EXIT_NOT_READY)


@click.command(name="station-key")
@guarded
def station_key(ctx: Context) -> None:
    """Print the station's public signing key (PEM) and fingerprint, to verify certificates."""
    from .certificate import StationKey

    key = StationKey.load_or_create()
    err.print(f"fingerprint {key.fingerprint}", highlight=False)
    click.echo(key.public_key_pem().rstrip())


# --- report (batch manifest) -------------------------------------------------------------------


@click.command()
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--batch", help="Only wipes of this station batch (see the station summary).")
@click.option("--since", help="Only rows at or after this UTC date or date-time (ISO 8601).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--kind",
    type=click.Choice(["wipes", "checks", "lost"]),
    default="wipes",
    show_default=True,
    help="wipes, checks (cable and backend checks), or lost (units blocked with posdiag lost).",
)
@click.option(
    "--include-open",
    is_flag=True,
    help="Also unfinished wipes (outcome in_progress or certificate_pending).",
)
@click.option(
    "--include-simulated", is_flag=True, help="Also simulated terminals (left out by default)."
)
@click.option(
    "--no-bom",
    is_flag=True,
    help="CSV without the byte-order mark (Excel needs it to read Chinese text; some programs "
    "do not want it).",
)
@click.option(
    "--header",
    type=click.Choice(["ids", "titles"]),
    default=None,
    help="CSV header: column ids (what scripts read; the default in English) or titles in the "
    "chosen language (the default in Chinese).",
)
@guarded
def report(
    ctx: Context,
    ledger_url: str | None,
    batch: str | None,
    since: str | None,
    fmt: str,
    kind: str,
    include_open: bool,
    include_simulated: bool,
    no_bom: bool,
    header: str | None,
) -> None:
    """Export the manifest: one row per terminal wiped (or checked), CSV or JSON on stdout.

    The ledger is verified first: every row says in its ``integrity`` column whether the records
    it is built from are intact. Exit codes: 0 all verified, 1 some record fails verification
    (the rows are still written, marked TAMPERED), 2 usage error.
    """
    from .ledger import Ledger
    from .manifest import (
        CHECK_COLUMNS,
        VERIFIED,
        WIPE_COLUMNS,
        ManifestError,
        csv_chunks,
        iter_check_rows,
        iter_wipe_rows,
        json_chunks,
        parse_since,
    )

    try:
        moment = parse_since(since) if since is not None else None
    except ManifestError as exc:
        fail(str(exc), EXIT_USAGE, ctx)
    if kind in ("checks", "lost") and batch is not None:
        fail(_("--batch applies to wipes only (inspections carry no batch id)"), EXIT_USAGE, ctx)
    marked = 0

    def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pass the rows on as they are written, counting those marked as failing."""
        nonlocal marked
        for row in rows:
            marked += row["integrity"] != VERIFIED
            yield row

    # Rows are written as they are read (a depot's year of checks never sits in memory), so the
    # verification that marks them runs first, and the ledger stays open until the last row.
    with Ledger(ledger_url) as ledger:
        verification = ledger.verify()
        if kind in ("checks", "lost"):
            columns: tuple[str, ...] = CHECK_COLUMNS
            rows = iter_check_rows(
                ledger,
                since=moment,
                include_simulated=include_simulated,
                verification=verification,
                lost_only=kind == "lost",
            )
        else:
            columns = WIPE_COLUMNS
            rows = iter_wipe_rows(
                ledger,
                batch=batch,
                since=moment,
                include_open=include_open,
                include_simulated=include_simulated,
                verification=verification,
            )
        if fmt == "json":
            for chunk in json_chunks(counted(rows)):
                click.echo(chunk, nl=False)
            click.echo()
        else:
            # bytes, so the CRLF line ends of RFC 4180 reach stdout untranslated
            titles = header == "titles" if header else language() != "en"
            for chunk in csv_chunks(counted(rows), columns, bom=not no_bom, titles=titles):
                click.echo(chunk.encode("utf-8"), nl=False)
    if not verification.ok:
        problems = verification.problem_count + (not verification.chain.ok)
        hidden = (
            ""
            if marked or include_simulated
            else _(" (rows of simulated terminals are left out; --include-simulated shows them)")
        )
        click.echo(
            _(
                "the ledger fails verification ({problems}); {marked} marked TAMPERED{hidden}; "
                "run posdiag verify --ledger for details"
            ).format(
                problems=ngettext("{count} problem", "{count} problems", problems).format(
                    count=problems
                ),
                marked=ngettext("{count} row is", "{count} rows are", marked).format(count=marked),
                hidden=hidden,
            ),
            err=True,
        )
        sys.exit(EXIT_NOT_READY)
