"""The ledger: a durable, tamper-evident record of every inspection, wipe and certificate.

A wipe certificate is only worth something if the record behind it survives a crash and cannot be
quietly edited afterwards. The package has one module per job:

* :mod:`.engine`: where the ledger lives, SQLite/PostgreSQL set-up, transactions, errors, and
  private files; :mod:`.shared`: one engine per process and URL for every Ledger on it;
* :mod:`.group`: the one writer per process that commits the threads' writes in groups, and the
  fair queue of several processes' writers; :mod:`.fast`: the write path's precompiled
  statements and the streaming reads; :mod:`.writes`: the statements the record API writes with;
* :mod:`.schema`: the tables and states; :mod:`.migrate`: creating and upgrading them;
* :mod:`.chain`: the hash-chained audit log and the seal of every row in it;
  :mod:`.verify`: checking both in one streaming pass;
* :mod:`.claims`: which terminals a session is wiping (advisory locks / lock files);
* :mod:`.api`: the record API the agent uses (:class:`Ledger`); :mod:`.runs`: its wipe runs.
"""

from __future__ import annotations

from .api import (
    AuditHead,
    CertificateRecord,
    InspectionRecord,
    Ledger,
    PendingCertificate,
    WipeRun,
    WipeStepRecord,
)
from .chain import (
    AUDIT_HASH_DOMAIN,
    GENESIS_HASH,
    ROW_HASH_DOMAIN,
    audit_row_hash,
    row_content_hash,
)
from .engine import DEFAULT_BUSY_TIMEOUT_S, LedgerError, default_path, default_url, sqlite_url
from .schema import (
    SCHEMA_VERSION,
    SEALED_TABLES,
    Outcome,
    RunStatus,
    StepStatus,
    audit_head,
    audit_log,
    certificates,
    devices,
    inspections,
    ledger_meta,
    metadata,
    wipe_runs,
    wipe_steps,
)
from .verify import ChainReport, LedgerVerification, Problem

__all__ = [
    "AUDIT_HASH_DOMAIN",
    "DEFAULT_BUSY_TIMEOUT_S",
    "GENESIS_HASH",
    "ROW_HASH_DOMAIN",
    "SCHEMA_VERSION",
    "SEALED_TABLES",
    "AuditHead",
    "CertificateRecord",
    "ChainReport",
    "InspectionRecord",
    "Ledger",
    "LedgerError",
    "LedgerVerification",
    "Outcome",
    "PendingCertificate",
    "Problem",
    "RunStatus",
    "StepStatus",
    "WipeRun",
    "WipeStepRecord",
    "audit_head",
    "audit_log",
    "audit_row_hash",
    "certificates",
    "default_path",
    "default_url",
    "devices",
    "inspections",
    "ledger_meta",
    "metadata",
    "row_content_hash",
    "sqlite_url",
    "wipe_runs",
    "wipe_steps",
]
