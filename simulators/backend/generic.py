"""A simulated acquirer / agent platform, speaking whatever its profile describes.

The same profile TOML drives the connector (``posdiag.drivers.backend.generic``) and this
simulator, which serves the profile's operations from the server side:

* every operation at its path, ``POST`` only (404 for other paths, 405 for other methods, in a
  Spring-style JSON error body as such platforms' gateways answer);
* the body decoded as the profile says (JSON or form); the request signature **verified** with
  the profile's scheme (a bad one → the profile's first ``auth_codes`` entry, "签名错误"), the
  agent number checked;
* answers in the profile's envelope (code and message at their dotted paths), signed with the
  profile's scheme (the platform's own RSA key for ``sha256withrsa-sorted``);
* units held as :class:`SimTerminal`; their platform state is the raw value the profile's
  ``[states]`` table maps back from ``SimTerminal.state`` (first match in the table), or a raw
  value the unit was seeded with (``extra["raw_state"]``). A unit whose release is pending
  (``release_pending=N``) still reports its bound state until N queries have passed;
* unbind of an unbound unit → the profile's first ``already_codes`` entry; unbind of a locked
  unit → :data:`REFUSED_CODE`; lock → disabled; unknown unit → the query's first
  ``not_found_codes`` entry, or a success with an empty record when the profile lists none.

Faults: the common ones, ``bad_signature=N`` (the first N calls fail the signature check) and
``release_pending=N``. ``Retry-After`` of the 429 is ``retry_after`` (tests use ``"0"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from posdiag.drivers.backend.generic import codec
from posdiag.drivers.backend.generic.profile import Operation, Profile, load_profile
from posdiag.drivers.backend.generic.signing import SigningKeys, sign, verify
from posdiag.drivers.backend.model import Binding
from posdiag.drivers.errors import AddressError

from .server import COMMON_FAULTS, BackendSimulator, Request, Response, SimTerminal

__all__ = ["REFUSED_CODE", "GenericPlatformSimulator", "parse_seed"]

DEFAULT_AGENT = "A100000001"
DEFAULT_SECRET = "sim-md5-key-9f3c2a7e51b84d06"
REFUSED_CODE = "1200"
"""The business code for "cannot" (unbind of a locked unit): in no profile list, on purpose."""
FORMAT_CODE = "1000"
MERCHANT_NO = "898440358120001"
MERCHANT_NAME = "深圳市某某便利店"


def parse_seed(pairs: str | Iterable[str], profile: Profile) -> list[SimTerminal]:
    """Units from ``SERIAL=STATE`` pairs (comma/space separated in a string).

    STATE is ``bound``, ``unbound``, ``disabled``, or one of the profile's raw states
    (``CHANGE_BIND``, ``FORCED_UNBIND``…), which the unit then reports verbatim.

    Raises:
        AddressError: a malformed pair or a state the profile cannot express.
    """
    items = pairs.replace(",", " ").split() if isinstance(pairs, str) else list(pairs)
    terminals = []
    for item in items:
        serial, sep, state = item.partition("=")
        if not sep or not serial or not state:
            raise AddressError(f"seed {item[:40]!r}: expected SERIAL=STATE")
        raw: str | None = None
        if state in ("bound", "unbound", "disabled"):
            normal = Binding(state)
            if profile.raw_state(normal) is None:
                raise AddressError(f"seed {item[:40]!r}: profile {profile.name} has no {state}")
        elif state in profile.states and profile.states[state] is not Binding.UNKNOWN:
            raw, normal = state, profile.states[state]
        else:
            raise AddressError(
                f"seed {item[:40]!r}: state is bound, unbound, disabled or a raw state of "
                f"profile {profile.name} ({', '.join(profile.states)})"
            )
        owned = normal is not Binding.UNBOUND
        terminal = SimTerminal(
            serial=serial,
            state=normal.value,
            merchant=MERCHANT_NO if owned else None,
            store=None,
            model="MP35P",
        )
        if owned:
            terminal.extra.update(
                merchant_name=MERCHANT_NAME,
                bind_time="2024-03-01 10:00:00",
                activate_time="2024-03-02 09:30:00",
            )
        if raw is not None:
            terminal.extra["raw_state"] = raw
        terminals.append(terminal)
    return terminals


class GenericPlatformSimulator(BackendSimulator):
    """A profile-described agent platform (see the module docstring).

    Args:
        terminals: the units it knows.
        faults: common faults plus ``bad_signature`` and ``release_pending``.
        profile: a profile path or shipped name (default: the shipped example).
        agent_no: the agent number it accepts.
        secret: the shared secret (MD5 / HMAC profiles); RSA profiles get generated key pairs.
        retry_after: the ``Retry-After`` of its 429 answers.
    """

    kind: ClassVar[str] = "generic"
    FAULTS: ClassVar[tuple[str, ...]] = (*COMMON_FAULTS, "bad_signature", "release_pending")

    def __init__(
        self,
        terminals: list[SimTerminal] | None = None,
        faults: dict[str, float] | None = None,
        *,
        profile: str | Path = "example-agent-platform",
        agent_no: str = DEFAULT_AGENT,
        secret: str = DEFAULT_SECRET,
        retry_after: str = "1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.profile_ref = str(Path(profile).resolve()) if isinstance(profile, Path) else profile
        self.profile = load_profile(self.profile_ref)
        self.agent_no, self.secret, self.retry_after = agent_no, secret, retry_after
        self.agent_key: rsa.RSAPrivateKey | None = None
        self.platform_key: rsa.RSAPrivateKey | None = None
        if self.profile.signing.spec.scheme == "sha256withrsa-sorted":
            self.agent_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys = SigningKeys(
            secret=secret,
            private_key=self.platform_key,
            public_key=self.agent_key.public_key() if self.agent_key else None,
        )
        self._ops: dict[str, list[Operation]] = {}
        for op in (self.profile.query, self.profile.unbind, self.profile.lock):
            if op is not None:
                self._ops.setdefault(op.path, []).append(op)
        super().__init__(terminals, faults, host, port)

    @classmethod
    def seeded(cls, pairs: str | Iterable[str], **kwargs: Any) -> GenericPlatformSimulator:
        """A simulator holding the units of ``SERIAL=STATE`` pairs (see :func:`parse_seed`)."""
        simulator = cls(**kwargs)
        for terminal in parse_seed(pairs, simulator.profile):
            simulator.add(terminal)
        return simulator

    def backends_toml(self, name: str = "generic") -> str:
        """A ``[backend.NAME]`` section for a connector pointed at this simulator."""
        quote = lambda text: json.dumps(text, ensure_ascii=False)  # noqa: E731
        lines = [
            f"[backend.{name}]",
            'kind = "generic"',
            f"url = {quote(self.api_url)}",
            f"profile = {quote(self.profile_ref)}",
            f"agent_no = {quote(self.agent_no)}",
            "rate = 100.0",
        ]
        if self.agent_key is not None and self.platform_key is not None:
            private = self.agent_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii")
            public = (
                self.platform_key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode("ascii")
            )
            lines += [f"private_key = '''\n{private}'''", f"platform_public_key = '''\n{public}'''"]
        else:
            lines.append(f"secret = {quote(self.secret)}")
        return "\n".join(lines) + "\n"

    def new_id(self, terminal: SimTerminal) -> str:
        """An 8-digit terminal number, as acquirers issue them (通联 ``termno``)."""
        return str(10000001 + len(self.terminals))

    def rate_limited(self) -> Response:
        """429 in the platform's envelope."""
        return self._answer("429", "请求过于频繁，请稍后再试", status=429)

    def raw_state(self, terminal: SimTerminal) -> str:
        """The platform's word for the unit's state (pending releases still look bound)."""
        raw = terminal.extra.get("raw_state")
        if isinstance(raw, str):
            return raw
        normal = Binding.BOUND if terminal.state == "pending" else Binding(terminal.state)
        return self.profile.raw_state(normal) or "UNKNOWN"

    # -- the API ---------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        """Decode, verify, dispatch to the profile's operation."""
        candidates = self._ops.get(request.path)
        if not candidates:
            return Response.json(404, {"status": 404, "error": "Not Found", "path": request.path})
        if request.method != "POST":
            return Response.json(405, {"status": 405, "error": "Method Not Allowed"})
        try:
            params = codec.decode_request(self.profile, request.body)
        except (ValueError, UnicodeDecodeError):
            return self._answer(FORMAT_CODE, "请求报文格式错误")
        op = next(
            (o for o in candidates if all(params.get(k) == v for k, v in o.constants.items())),
            None,
        )
        if op is None:
            return self._answer(FORMAT_CODE, "操作类型错误")
        signing = self.profile.signing
        spec = signing.spec
        forged = self.count("signature_checks") <= int(self.faults.get("bad_signature", 0))
        if forged or not verify(spec, self._keys, params, params.get(spec.field)):
            self.count("bad_signatures")
            return self._auth("签名错误")
        if signing.agent_field and params.get(signing.agent_field) != self.agent_no:
            return self._auth("代理商不存在")
        self.count(f"op.{op.name}")
        terminal, problem = self._terminal(op, params)
        if problem is not None:
            return problem
        if op.name == "query":
            return self._query(op, terminal)
        if terminal is None:
            codes = op.not_found_codes or self.profile.query.not_found_codes
            return self._answer(codes[0] if codes else REFUSED_CODE, "终端不存在")
        if op.name == "unbind":
            return self._unbind(op, terminal)
        return self._lock(op, terminal, params)

    def _terminal(
        self, op: Operation, params: dict[str, Any]
    ) -> tuple[SimTerminal | None, Response | None]:
        serial = params.get(op.sn_field) if op.sn_field else None
        tusn = params.get(op.tusn_field) if op.tusn_field else None
        if not isinstance(serial, str | None) or not isinstance(tusn, str | None):
            return None, self._answer(FORMAT_CODE, "终端编号格式错误")
        if not serial and not tusn:
            return None, self._answer(FORMAT_CODE, "终端编号不能为空")
        return self.find(serial=serial, tusn=tusn), None

    def _query(self, op: Operation, terminal: SimTerminal | None) -> Response:
        if terminal is None:
            if op.not_found_codes:
                return self._answer(op.not_found_codes[0], "终端信息不存在")
            parent = op.response["state"].rpartition(".")[0]
            return self._answer(
                self.profile.transport.success_values[0], "成功", {parent: None} if parent else {}
            )
        self.settle_pending(terminal)
        owned = terminal.merchant is not None
        values = {
            "state": self.raw_state(terminal),
            "merchant_no": terminal.merchant,
            "merchant_name": terminal.extra.get("merchant_name") if owned else None,
            "terminal_no": terminal.backend_id,
            "bind_time": terminal.extra.get("bind_time") if owned else None,
            "activate_time": terminal.extra.get("activate_time") if owned else None,
            "model": terminal.model,
            "sn": terminal.serial,
            "tusn": terminal.tusn,
        }
        fields = {path: values[name] for name, path in op.response.items()}
        return self._answer(self.profile.transport.success_values[0], "成功", fields)

    def _unbind(self, op: Operation, terminal: SimTerminal) -> Response:
        success = self.profile.transport.success_values[0]
        state = self.profile.binding_of(self.raw_state(terminal))
        if terminal.state == "pending":
            return self._answer(success, "解绑处理中")
        if state is Binding.UNBOUND:
            if op.already_codes:
                return self._answer(op.already_codes[0], "终端未绑定")
            if op.already_messages:
                return self._answer(REFUSED_CODE, f"终端{op.already_messages[0]}")
            return self._answer(success, "成功")
        if state is Binding.DISABLED:
            return self._answer(REFUSED_CODE, "终端已锁定，不能解绑")
        terminal.extra.pop("raw_state", None)
        self.begin_release(terminal)
        return self._answer(success, "解绑成功")

    def _lock(self, op: Operation, terminal: SimTerminal, params: dict[str, Any]) -> Response:
        success = self.profile.transport.success_values[0]
        if terminal.state == "disabled":
            if op.already_codes:
                return self._answer(op.already_codes[0], "终端已锁定")
            return self._answer(success, "成功")
        terminal.extra.pop("raw_state", None)
        terminal.state, terminal.pending_lookups = "disabled", 0
        reason = params.get(op.reason_field) if op.reason_field else None
        terminal.lost_reason = str(reason)[:64] if reason else "lost"
        return self._answer(success, "锁定成功")

    def _auth(self, message: str) -> Response:
        codes = self.profile.transport.auth_codes
        if codes:
            return self._answer(codes[0], message)
        return self._answer("401", message, status=401)

    def _answer(
        self, code: str, message: str, fields: dict[str, Any] | None = None, status: int = 200
    ) -> Response:
        """An answer in the profile's envelope, signed as the platform signs."""
        document: dict[str, Any] = {}
        codec.set_path(document, self.profile.transport.success_field, code)
        if self.profile.transport.message_field:
            codec.set_path(document, self.profile.transport.message_field, message)
        for path, value in (fields or {}).items():
            codec.set_path(document, path, value)
        spec = self.profile.signing.spec
        document[spec.field] = sign(spec, self._keys, document)
        headers = {"Retry-After": self.retry_after} if status == 429 else {}
        return Response.json(status, document, "application/json;charset=UTF-8", **headers)
