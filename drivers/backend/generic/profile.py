"""Platform profiles: a TOML file that describes one acquirer or agent platform's API.

A depot adds a 拉卡拉/通联-type platform without code: the generic connector and the generic
simulator both read the same profile (reference §3.3 lists what it must express). Schema::

    name = "example-agent-platform"     # [A-Za-z0-9_.-]{1,64}
    verified = false                    # true only once checked against the live platform
    description = "…"                   # optional

    [transport]
    body = "json"                       # json | form (always POST; the answer is JSON)
    success_field = "code"              # dotted path of the business code in the answer
    success_values = ["00"]             # codes meaning success (strings)
    message_field = "msg"               # dotted path of the message (optional)
    auth_codes = ["99"]                 # codes meaning bad signature / agent (→ auth error)
    constants = { version = "1.0" }     # fields sent in every request (optional)

    [signing]                           # see signing.py for the wire layout
    scheme = "md5-sorted"               # md5-sorted | hmac-sha256-sorted | sha256withrsa-sorted
    field = "sign"                      # the signature's field
    exclude = ["sign", "sign_type"]     # keys left out of the signed string (empties always)
    url_encode = false                  # URL-encode values before signing
    secret_suffix = "&key="             # md5-sorted only: "&key=" | "" (raw secret appended)
    case = "upper"                      # hex output case: upper | lower
    encoding = "hex"                    # hex | base64 (default base64 for RSA)
    timestamp_field = "timestamp"       # optional
    timestamp_format = "unix_ms"        # unix | unix_ms | a strftime pattern ("%Y%m%d%H%M%S")
    timestamp_utc_offset = "+08:00"     # strftime patterns only: the platform's clock zone
    agent_field = "agentNo"             # its value is the backend setting agent_no (optional)
    nonce_field = ""                    # a random 32-hex-digit nonce per request (optional)
    verify_response = false             # check the answers' signature field

    [operations.query]                  # required
    path = "/materialsDataQuery"
    request = { sn_field = "materialsNo", tusn_field = "" }   # at least one of the two
    not_found_codes = ["1001"]          # codes meaning "no such terminal here" (optional)
    [operations.query.response]         # dotted paths in the answer; only state is required
    state = "data.bindStatus"
    merchant_no = "data.customerNo"     # merchant_name, terminal_no, bind_time,
                                        # activate_time, model, sn, tusn likewise

    [operations.unbind]                 # required; [operations.lock] optional, same keys
    path = "/unBindMaterials"
    request = { sn_field = "materialsNo", constants = { op = "UN_BIND" } }
    already_codes = ["1102"]            # codes meaning "already unbound" / "already locked"
    already_messages = ["信息不存在"]    # message substrings meaning the same (optional)
    not_found_codes = []                # (lock also takes request.reason_field)

    [states]                            # the platform's raw state → bound|unbound|disabled|unknown
    BINDED = "bound"
    UN_BIND = "unbound"

A profile needs at least one raw state for ``bound`` and one for ``unbound``, and one for
``disabled`` when it has a ``lock`` operation (else a lock could never be confirmed). Every
mistake is one :class:`BackendConfigError` line naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..model import BackendConfigError, Binding
from .signing import DEFAULT_EXCLUDE, SCHEMES, SignSpec
from .table import FIELD, Table

__all__ = [
    "PROFILES_DIR",
    "Operation",
    "Profile",
    "Signing",
    "Transport",
    "load_profile",
    "parse_profile",
    "shipped_profiles",
]

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
MAX_PROFILE = 64 * 1024
RESPONSE_KEYS = (
    "state",
    "merchant_no",
    "merchant_name",
    "terminal_no",
    "bind_time",
    "activate_time",
    "model",
    "sn",
    "tusn",
)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SHIPPED = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DOTTED = re.compile(r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}")
_PATH = re.compile(r"/[A-Za-z0-9/_.~%-]{0,199}")
_STRFTIME = re.compile(r"(?=.*%)(%[YymdHMSf]|[-:./_T ]){1,32}")
_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)")


@dataclass(frozen=True)
class Transport:
    """The request body and the answer's envelope.

    Codes are compared as text because platforms send them as strings (``"00"``, ``"000000"``)
    where a leading zero matters; a numeric code in an answer is read as its decimal text.
    """

    body: str
    success_field: str
    success_values: tuple[str, ...]
    message_field: str | None = None
    auth_codes: tuple[str, ...] = ()
    constants: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Signing:
    """The signature spec plus the signed fields the connector fills in."""

    spec: SignSpec
    timestamp_field: str | None = None
    timestamp_format: str = "unix_ms"
    timestamp_utc_offset_min: int = 480
    agent_field: str | None = None
    nonce_field: str | None = None
    verify_response: bool = False


@dataclass(frozen=True)
class Operation:
    """One platform operation (query, unbind, lock).

    ``already_codes`` / ``already_messages`` exist because platforms answer an unbind of an
    unbound unit with an error (think-pos counts 力POS's 1101/1102 and 鲲鹏's "…信息不存在" as
    released); ``not_found_codes`` turn "no such terminal" into UNKNOWN instead of an error.
    """

    name: str
    path: str
    sn_field: str | None = None
    tusn_field: str | None = None
    reason_field: str | None = None
    constants: Mapping[str, str] = field(default_factory=dict)
    already_codes: tuple[str, ...] = ()
    already_messages: tuple[str, ...] = ()
    not_found_codes: tuple[str, ...] = ()
    response: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A validated platform profile."""

    name: str
    verified: bool
    transport: Transport
    signing: Signing
    query: Operation
    unbind: Operation
    lock: Operation | None
    states: Mapping[str, Binding]
    description: str = ""
    source: str = "profile"

    def binding_of(self, raw: str) -> Binding | None:
        """The normalised binding of a raw state (exact, then case-insensitive), else None."""
        if raw in self.states:
            return self.states[raw]
        folded = raw.casefold()
        for name, binding in self.states.items():
            if name.casefold() == folded:
                return binding
        return None

    def raw_state(self, binding: Binding) -> str | None:
        """The first raw state the table maps to ``binding`` (what a simulator reports)."""
        return next((raw for raw, b in self.states.items() if b is binding), None)


def _transport(table: Table) -> Transport:
    body = table.choice("body", ("json", "form"), "json")
    success_field = table.text("success_field", _DOTTED, required=True)
    success_values = table.codes("success_values")
    if not success_values:
        raise table.error('transport.success_values must list the success codes, e.g. ["00"]')
    transport = Transport(
        body=body,
        success_field=str(success_field),
        success_values=success_values,
        message_field=table.text("message_field", _DOTTED),
        auth_codes=table.codes("auth_codes"),
        constants=table.fields("constants"),
    )
    table.done(
        "body", "success_field", "success_values", "message_field", "auth_codes", "constants"
    )
    return transport


def _signing(table: Table) -> Signing:
    scheme = table.choice("scheme", SCHEMES, "md5-sorted")
    rsa = scheme == "sha256withrsa-sorted"
    exclude = table.get("exclude", list, sorted(DEFAULT_EXCLUDE))
    if not all(isinstance(v, str) and v for v in exclude):
        raise table.error("signing.exclude must be a list of field names")
    if "secret_suffix" in table.data and scheme != "md5-sorted":
        raise table.error("signing.secret_suffix applies only to the md5-sorted scheme")
    spec = SignSpec(
        scheme=scheme,
        field=str(table.text("field", FIELD) or "sign"),
        exclude=frozenset(exclude),
        url_encode=table.get("url_encode", bool, False),
        secret_suffix=table.choice("secret_suffix", ("&key=", ""), "&key="),
        case=table.choice("case", ("upper", "lower"), "upper"),
        encoding=table.choice("encoding", ("hex", "base64"), "base64" if rsa else "hex"),
    )
    fmt = table.get("timestamp_format", str, "unix_ms")
    if fmt not in ("unix", "unix_ms") and not _STRFTIME.fullmatch(fmt):
        raise table.error(
            "signing.timestamp_format must be unix, unix_ms or a pattern of "
            "%Y %y %m %d %H %M %S %f and - : . / _ T or space"
        )
    offset = table.get("timestamp_utc_offset", str, "+08:00")
    found = _OFFSET.fullmatch(offset)
    if found is None or int(found.group(2)) > 14 or int(found.group(3)) > 59:
        raise table.error('signing.timestamp_utc_offset must look like "+08:00"')
    minutes = int(found.group(2)) * 60 + int(found.group(3))
    signing = Signing(
        spec=spec,
        timestamp_field=table.text("timestamp_field", FIELD),
        timestamp_format=fmt,
        timestamp_utc_offset_min=-minutes if found.group(1) == "-" else minutes,
        agent_field=table.text("agent_field", FIELD),
        nonce_field=table.text("nonce_field", FIELD),
        verify_response=table.get("verify_response", bool, False),
    )
    table.done(
        "scheme",
        "field",
        "exclude",
        "url_encode",
        "secret_suffix",
        "case",
        "encoding",
        "timestamp_field",
        "timestamp_format",
        "timestamp_utc_offset",
        "agent_field",
        "nonce_field",
        "verify_response",
    )
    return signing


def _operation(table: Table, name: str) -> Operation:
    path = table.text("path", _PATH, required=True)
    request = table.need("request")
    sn_field = request.text("sn_field", FIELD)
    tusn_field = request.text("tusn_field", FIELD)
    if not sn_field and not tusn_field:
        raise table.error(f"operations.{name}.request needs sn_field or tusn_field")
    reason_field = request.text("reason_field", FIELD)
    if reason_field and name != "lock":
        raise table.error(f"operations.{name}.request.reason_field applies only to lock")
    constants = request.fields("constants")
    request.done("sn_field", "tusn_field", "reason_field", "constants")
    response: dict[str, str] = {}
    answer = table.sub("response", required=name == "query")
    if answer is not None:
        if name != "query":
            raise table.error(f"operations.{name}.response applies only to query")
        for key in RESPONSE_KEYS:
            value = answer.text(key, _DOTTED, required=key == "state")
            if value:
                response[key] = value
        answer.done(*RESPONSE_KEYS)
    already = table.codes("already_codes")
    messages = table.codes("already_messages")
    if (already or messages) and name == "query":
        raise table.error("operations.query takes no already_codes or already_messages")
    operation = Operation(
        name=name,
        path=str(path),
        sn_field=sn_field,
        tusn_field=tusn_field,
        reason_field=reason_field,
        constants=constants,
        already_codes=already,
        already_messages=messages,
        not_found_codes=table.codes("not_found_codes"),
        response=response,
    )
    table.done(
        "path", "request", "response", "already_codes", "already_messages", "not_found_codes"
    )
    return operation


def _states(table: Table) -> dict[str, Binding]:
    states: dict[str, Binding] = {}
    names = tuple(b.value for b in Binding)
    for raw, value in table.data.items():
        if not 0 < len(raw) <= 64:
            raise table.error("states: a raw state is 1 to 64 characters")
        if value not in names:
            raise table.error(f"states.{raw[:40]} must be one of {', '.join(names)}")
        states[raw] = Binding(value)
    return states


def parse_profile(text: str, source: str = "profile") -> Profile:
    """Validate a profile's TOML text (see the module docstring).

    Raises:
        BackendConfigError: one line naming ``source`` and the offending key.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BackendConfigError(f"profile {source}: not valid TOML ({exc})") from None
    top = Table(source, "", document)
    top.done("name", "verified", "description", "transport", "signing", "operations", "states")
    name = top.text("name", _NAME, required=True)
    verified = top.get("verified", bool, required=True)
    description = top.get("description", str, "")
    transport = _transport(top.need("transport"))
    signing = _signing(top.need("signing"))
    operations = top.need("operations")
    operations.done("query", "unbind", "lock")
    ops = {}
    for op_name in ("query", "unbind", "lock"):
        sub = operations.sub(op_name, required=op_name != "lock")
        ops[op_name] = _operation(sub, op_name) if sub is not None else None
    states = _states(top.need("states"))
    for needed in (Binding.BOUND, Binding.UNBOUND) + ((Binding.DISABLED,) if ops["lock"] else ()):
        if needed not in states.values():
            why = " ([operations.lock] exists)" if needed is Binding.DISABLED else ""
            raise top.error(f"states: no raw state maps to {needed.value!r}{why}")
    query, unbind = ops["query"], ops["unbind"]
    assert query is not None and unbind is not None
    return Profile(
        name=str(name),
        verified=verified,
        transport=transport,
        signing=signing,
        query=query,
        unbind=unbind,
        lock=ops["lock"],
        states=states,
        description=description,
        source=source,
    )


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in ``drivers/backend/profiles``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(reference: str) -> Profile:
    """A profile by path (``*.toml`` or containing ``/``) or by shipped name.

    Raises:
        BackendConfigError: no such file or shipped profile, unreadable, or invalid.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise BackendConfigError("the profile setting must name a profile file or shipped profile")
    if "/" in reference or reference.endswith(".toml"):
        path = Path(reference).expanduser()
    elif _SHIPPED.fullmatch(reference):
        path = PROFILES_DIR / f"{reference}.toml"
        if not path.is_file():
            raise BackendConfigError(
                f"no shipped profile {reference!r} (shipped: {', '.join(shipped_profiles())})"
            )
    else:
        raise BackendConfigError(f"profile {reference[:60]!r} is neither a path nor a name")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROFILE + 1)
    except OSError as exc:
        raise BackendConfigError(f"cannot read profile {path}: {exc.strerror}") from None
    if len(data) > MAX_PROFILE:
        raise BackendConfigError(f"profile {path} is larger than {MAX_PROFILE // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BackendConfigError(f"profile {path} is not UTF-8 text") from None
    return parse_profile(text, source=path.name)
