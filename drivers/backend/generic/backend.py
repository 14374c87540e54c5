"""The generic acquirer / agent-platform connector: one class, any platform a profile describes.

Lookup sends the profile's ``query`` operation by TUSN (when the key has one and the query takes
``tusn_field``) or by serial number, and maps the platform's raw state through the profile's
``[states]`` table. Release sends ``unbind``; lost sends ``lock``. Both confirm with a fresh
query, as every connector does: DONE only when the query shows the change, PENDING when the
platform accepted it but still reports the old state, ALREADY when the unit was already there
(nothing sent) or the platform answered one of the profile's ``already_codes`` and the query
agrees, REFUSED for business refusals and units the platform does not know.

The profile is the only source of the platform's protocol: the example shipped with posdiag is
modelled on public documentation and marked ``verified = false``; every record it produces says
so in its evidence, so nobody mistakes a guess for a checked fact.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from ...model import Evidence
from ...text import clean_text
from ..config import BackendConfig
from ..http import HttpClient
from ..model import (
    BackendAuthError,
    BackendConfigError,
    BackendProtocolError,
    BackendRecord,
    BackendRefused,
    BackendUnavailable,
    Binding,
    ChangeResult,
    ChangeStatus,
    TerminalKey,
    masked,
    said,
)
from ..registry import http_client
from . import codec
from .keys import signing_keys
from .profile import Operation, Profile, load_profile
from .signing import SigningKeys, sign, verify

__all__ = ["GenericBackend", "connect"]

log = structlog.get_logger(__name__)

UNVERIFIED = "profile not verified against the platform"


@dataclass(frozen=True)
class _Seen:
    """One query's outcome: the record, and the identifiers the next operation may need."""

    record: BackendRecord
    serial: str | None
    tusn: str | None


class GenericBackend:
    """A platform described by a :class:`Profile`, spoken over :class:`HttpClient`."""

    kind = "generic"

    def __init__(
        self,
        config: BackendConfig,
        profile: Profile,
        keys: SigningKeys,
        agent_no: str | None,
        http: HttpClient,
    ) -> None:
        self.name = config.name
        self.profile = profile
        self._keys = keys
        self._agent_no = agent_no
        self._http = http

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    # -- the contract ---------------------------------------------------------------------

    def lookup(self, key: TerminalKey) -> BackendRecord:
        """The unit's binding on the platform, UNKNOWN when the platform does not know it."""
        return self._query(key).record

    def release(self, key: TerminalKey) -> ChangeResult:
        """Unbind the unit from its merchant, then confirm with a fresh query."""
        before = self._query(key)
        if before.record.binding is Binding.UNBOUND:
            return ChangeResult(
                "release",
                ChangeStatus.ALREADY,
                before.record,
                before.record,
                detail="the platform already reports the unit unbound",
            )
        if before.record.binding is Binding.UNKNOWN:
            return self._unknown("release", before)
        return self._change("release", self.profile.unbind, before, Binding.UNBOUND, {})

    def report_lost(self, key: TerminalKey, reason: str) -> ChangeResult:
        """Lock the unit (挂失) with the profile's lock operation, confirmed by a query.

        Raises:
            BackendRefused: the profile has no lock operation.
        """
        lock = self.profile.lock
        if lock is None:
            raise BackendRefused(
                f"{self.name}: this platform's profile has no lost/lock operation; "
                "report the unit lost in the platform's own console"
            )
        before = self._query(key)
        if before.record.binding is Binding.DISABLED:
            return ChangeResult(
                "report_lost",
                ChangeStatus.ALREADY,
                before.record,
                before.record,
                detail="the platform already reports the unit locked",
            )
        if before.record.binding is Binding.UNKNOWN:
            return self._unknown("report_lost", before)
        extra = {}
        if lock.reason_field and reason:
            extra[lock.reason_field] = clean_text(reason, 64)
        return self._change("report_lost", lock, before, Binding.DISABLED, extra)

    # -- operations -----------------------------------------------------------------------

    def _unknown(self, action: str, before: _Seen) -> ChangeResult:
        return ChangeResult(
            action,
            ChangeStatus.REFUSED,
            before.record,
            detail=f"{self.name} does not know this unit (nothing was sent)",
        )

    def _change(
        self, action: str, op: Operation, before: _Seen, wanted: Binding, extra: dict[str, str]
    ) -> ChangeResult:
        fields = {**self._terminal_fields(op, before.serial, before.tusn), **extra}
        sent = (f"POST {op.path}",)
        envelope = self._call(op, fields)
        code = envelope.code or ""
        said_text = f"code {clean_text(code, 32)}: {clean_text(envelope.message, 80)}"
        if envelope.ok(self.profile):
            already = False
        elif code in op.already_codes or any(m in envelope.message for m in op.already_messages):
            already = True
        elif code in op.not_found_codes:
            return ChangeResult(
                action,
                ChangeStatus.REFUSED,
                before.record,
                requests=sent,
                detail=f"the platform does not know this unit ({said_text})",
            )
        else:
            log.info("backend.generic.refused", backend=self.name, op=op.name, code=code[:32])
            return ChangeResult(
                action,
                ChangeStatus.REFUSED,
                before.record,
                requests=sent,
                detail=f"the platform refused the {op.name} ({said_text})",
            )
        after = self._query(before.record.key).record
        shown = after.status or after.binding.value
        if already:
            agrees = after.binding is wanted or (
                wanted is Binding.UNBOUND and after.binding is Binding.UNKNOWN
            )
            status = ChangeStatus.ALREADY if agrees else ChangeStatus.REFUSED
            detail = (
                f"the platform answered {said_text} (already done); its query shows {shown}"
                if agrees
                else f"the platform answered {said_text} (already done) but its query "
                f"still shows {shown}: check the unit in the platform's console"
            )
        elif after.binding is wanted:
            status, detail = ChangeStatus.DONE, f"the platform's query now shows {shown}"
        else:
            status = ChangeStatus.PENDING
            detail = f"the platform accepted the {op.name} but its query still shows {shown}"
        log.info("backend.generic.change", backend=self.name, op=op.name, status=status.value)
        return ChangeResult(action, status, before.record, after, detail, sent)

    def _query(self, key: TerminalKey) -> _Seen:
        op, profile = self.profile.query, self.profile
        envelope = self._call(op, self._terminal_fields(op, key.serial, key.tusn))
        source = f"{self.name} {op.path}"
        evidence = [] if profile.verified else [said(self.name, UNVERIFIED)]
        code = envelope.code or ""
        if code in op.not_found_codes and not envelope.ok(profile):
            evidence.append(said(source, f"code {code}: {envelope.message} (not known here)"))
            return self._unknown_record(key, evidence)
        if not envelope.ok(profile):
            raise BackendRefused(
                f"{self.name}: the platform refused the query (code {clean_text(code, 32)}: "
                f"{clean_text(envelope.message, 80)}); check the unit and the agent number",
                code[:32],
            )
        document, paths = envelope.document, op.response
        raw = self._field(document, paths["state"])
        if raw is None:
            parent = paths["state"].rpartition(".")[0]
            if parent and codec.get_path(document, parent) in (codec.MISSING, None, {}, []):
                evidence.append(said(source, f"the answer has no record ({parent} is empty)"))
                return self._unknown_record(key, evidence)
            raise BackendProtocolError(
                f"{self.name}: the query's answer has no {paths['state']}; check "
                f"[operations.query.response] in profile {profile.name}"
            )
        binding = profile.binding_of(raw)
        shown_raw = clean_text(raw, 64)
        if binding is None:
            binding = Binding.UNKNOWN
            fact = f"{paths['state']} = {shown_raw!r}, not in profile {profile.name}'s [states]"
        else:
            fact = f"{paths['state']} = {shown_raw!r} → {binding.value} (profile {profile.name})"
        evidence.append(said(source, fact))
        values = {name: self._field(document, path) for name, path in paths.items()}
        for name, asked in (("sn", key.serial), ("tusn", key.tusn)):
            answered = values.get(name)
            if asked and answered and answered.casefold() != asked.casefold():
                raise BackendProtocolError(
                    f"{self.name}: asked about {name.upper()} {asked} but the platform answered "
                    f"about {clean_text(answered, 64)!r}; check the profile's query fields"
                )
        merchant = masked(values.get("merchant_no")) or masked(values.get("merchant_name"))
        if merchant:
            evidence.append(said(source, f"merchant {merchant}"))
        for name, label in (("bind_time", "bound at"), ("activate_time", "activated at")):
            if values.get(name):
                evidence.append(said(source, f"{label} {values[name]}"))
        record = BackendRecord(
            backend=self.name,
            kind=self.kind,
            key=key,
            binding=binding,
            status=shown_raw,
            backend_id=clean_text(values["terminal_no"], 64) if values.get("terminal_no") else None,
            merchant=merchant,
            model=clean_text(values["model"], 64) if values.get("model") else None,
            evidence=tuple(evidence),
        )
        return _Seen(record, key.serial or values.get("sn"), key.tusn or values.get("tusn"))

    def _unknown_record(self, key: TerminalKey, evidence: list[Evidence]) -> _Seen:
        record = BackendRecord(
            backend=self.name,
            kind=self.kind,
            key=key,
            binding=Binding.UNKNOWN,
            evidence=tuple(evidence),
        )
        return _Seen(record, key.serial, key.tusn)

    def _field(self, document: object, path: str) -> str | None:
        try:
            return codec.scalar(codec.get_path(document, path))
        except TypeError:
            raise BackendProtocolError(
                f"{self.name}: the answer's {path} is not a single value; check profile "
                f"{self.profile.name}"
            ) from None

    def _terminal_fields(
        self, op: Operation, serial: str | None, tusn: str | None
    ) -> dict[str, str]:
        if tusn and op.tusn_field:
            return {op.tusn_field: tusn}
        if serial and op.sn_field:
            return {op.sn_field: serial}
        wanted = "serial number" if op.sn_field else "TUSN"
        raise BackendRefused(
            f"{self.name}: this platform's {op.name} needs the unit's {wanted}: scan the "
            f"{'SN' if op.sn_field else 'TUSN'} printed on the label"
        )

    # -- the wire -------------------------------------------------------------------------

    def _call(self, op: Operation, fields: dict[str, str]) -> codec.Envelope:
        profile, signing = self.profile, self.profile.signing
        content_type = codec.encode_request(profile, {})[1]

        def signed_body() -> tuple[str, dict[str, str], bytes]:
            # Built again for every attempt: a retry carries a fresh timestamp and nonce, so a
            # platform that refuses replays or stale requests accepts it.
            params = {**profile.transport.constants, **op.constants, **fields}
            if signing.agent_field and self._agent_no:
                params[signing.agent_field] = self._agent_no
            if signing.timestamp_field:
                params[signing.timestamp_field] = codec.timestamp(signing)
            if signing.nonce_field:
                params[signing.nonce_field] = codec.nonce()
            params[signing.spec.field] = sign(signing.spec, self._keys, params)
            return "", {}, codec.encode_request(profile, params)[0]

        answer = self._http.request(
            "POST",
            op.path,
            headers={"content-type": content_type, "accept": "application/json"},
            sign=signed_body,
        )
        what = f"{self.name}: POST {op.path}"
        if answer.status in (401, 403):
            raise BackendAuthError(
                f"{what}: HTTP {answer.status}, the platform refused the credentials; "
                "check agent_no and the key in the backends file"
            )
        if answer.status in (404, 405):
            raise BackendConfigError(
                f"{what}: HTTP {answer.status}, the platform has no such operation; check "
                f"operations.{op.name}.path in profile {profile.name}"
            )
        if answer.status >= 500:
            raise BackendUnavailable(f"{what}: the platform failed (HTTP {answer.status})")
        envelope = codec.read_envelope(profile, answer.json(what))
        if envelope is None:
            raise BackendProtocolError(
                f"{what}: HTTP {answer.status} without this platform's envelope "
                f"({profile.transport.success_field}); check profile {profile.name}"
            )
        if envelope.code in profile.transport.auth_codes:
            raise BackendAuthError(
                f"{what}: the platform refused the signature or agent (code "
                f"{clean_text(envelope.code, 32)}: {clean_text(envelope.message, 80)}); check "
                "agent_no, the secret or key, and the station's clock"
            )
        if signing.verify_response and envelope.ok(profile):
            document = envelope.document
            signature = document.get(signing.spec.field)
            if not verify(signing.spec, self._keys, document, signature):
                raise BackendAuthError(
                    f"{what}: the answer's signature does not verify; check the platform's "
                    "key in the backends file (or something between alters the answers)"
                )
        log.debug("backend.generic.call", backend=self.name, op=op.name, status=answer.status)
        return envelope


def connect(config: BackendConfig) -> GenericBackend:
    """The connector for a ``kind = "generic"`` backend (settings: profile, agent_no, keys).

    Raises:
        BackendConfigError: a missing or invalid profile, agent number or key.
    """
    try:
        profile = load_profile(config.require("profile"))
    except BackendConfigError as exc:
        raise BackendConfigError(f"backend {config.name!r}: {exc}") from None
    agent = config.setting("agent_no")
    if profile.signing.agent_field and (agent is None or agent == ""):
        agent = config.require("agent_no")
    if agent is not None and (
        isinstance(agent, bool) or not isinstance(agent, str | int) or len(str(agent)) > 64
    ):
        raise BackendConfigError(f"backend {config.name!r}: agent_no must be a short string")
    keys = signing_keys(config, profile)
    return GenericBackend(
        config, profile, keys, None if agent is None else str(agent), http_client(config)
    )
