"""Device addresses: one string names a terminal everywhere (CLI, logs, ledger, certificates).

Forms understood here::

    zvt+serial:///dev/ttyACM0?baud=9600&password=000000
    zvt+tcp://10.0.0.5:20007?password=123456
    zvt+sim://activated            (an in-process simulated terminal, for tests and demos)
    adb+usb://0820533061           (an Android POS on USB by serial; adb+usb://2fb8:2201 by ID)
    adb+tcp://127.0.0.1:5555       (adb over TCP; port 5555 by default)
    adb+sim://activated?model=pax-a920
    nexo+https://10.0.0.7:8443/nexo?poiid=V400m-324688179&ca=/etc/posdiag/lab-ca.pem&key=k.toml
                                   (a nexo Retailer / Adyen Terminal API terminal on the shop
                                   network; port 8443 and path /nexo by default; every option is
                                   optional: the POIID is read from the terminal's certificate,
                                   the CA and the key come from the station settings otherwise)
    /dev/ttyUSB0, COM3             (a bare serial device: ZVT over serial is assumed)

Query parameters are family options (baud, password, timeouts). The password never appears in
``Address.display()`` because addresses end up in logs and the ledger. A nexo address names its
key *file*, never the passphrase: a ``passphrase=`` option is refused, so the shared key of a
terminal never lands in a shell history, a log, the ledger or a certificate.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from .errors import AddressError
from .i18n import _

FAMILIES = ("zvt", "adb", "nexo")
LINKS = {"zvt": ("serial", "tcp", "sim"), "adb": ("usb", "tcp", "sim"), "nexo": ("https",)}
DEFAULT_TCP_PORT = {"zvt": 20007, "adb": 5555, "nexo": 8443}
"""PA00P016 §2.2; adb connect's default; the nexo terminal's HTTPS port (nexo reference §1)."""
DEFAULT_NEXO_PATH = "/nexo"
NEXO_OPTIONS = ("poiid", "ca", "key", "timeout")
"""The options a nexo address understands; any other is a typo (``poid=``) and refused, since a
misspelt ``ca=`` would otherwise silently fall back to the station's CA."""
SECRET_OPTIONS = frozenset({"password", "passphrase"})
_POIID = re.compile(r"[A-Za-z0-9]{1,32}-[A-Za-z0-9]{1,32}")
"""An Adyen POIID, ``[device model]-[serial number]`` (``V400m-324688179``)."""
_NEXO_PATH = re.compile(r"(/[A-Za-z0-9._~-]{1,64}){1,4}/?")
MAX_OPTION_SECONDS = 86_400.0
"""Longest timer or timeout an address may ask for (one day); more is a typo or an attack."""
_BARE_DEVICE = re.compile(r"^(/dev/\S+|COM\d+|\\\\\.\\COM\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Address:
    """A parsed device address.

    Attributes:
        family: protocol family, e.g. ``zvt``.
        link: how the family is reached: ``serial``, ``tcp`` or ``sim``.
        target: device path for serial, ``host:port`` for TCP, scenario name for ``sim``.
        options: query parameters (``baud``, ``password``…), as strings.
    """

    family: str
    link: str
    target: str
    options: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    def __str__(self) -> str:
        return self.display()

    def display(self, *, with_secrets: bool = False) -> str:
        """Render the canonical address string; secrets are dropped unless asked for."""
        options = {k: v for k, v in self.options.items() if with_secrets or k not in SECRET_OPTIONS}
        # a nexo address names files (ca=, key=): their slashes stay readable
        safe = "/" if self.family == "nexo" else ""
        query = f"?{urlencode(options, safe=safe)}" if options else ""
        if self.link == "serial":
            return f"{self.family}+serial://{self.target}{query}"
        return f"{self.family}+{self.link}://{self.target}{query}"

    @property
    def host_port(self) -> tuple[str, int]:
        """The (host, port) of a TCP or HTTPS address."""
        if self.link not in ("tcp", "https"):
            raise AddressError(_("{address} is not a TCP address").format(address=self))
        authority = self.target.partition("/")[0] if self.link == "https" else self.target
        host, _colon, port = authority.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def url_path(self) -> str:
        """The path of an HTTPS address (``/nexo``), where the terminal takes its requests."""
        if self.link != "https":
            raise AddressError(_("{address} is not an HTTPS address").format(address=self))
        _authority, slash, path = self.target.partition("/")
        return f"/{path}" if slash else DEFAULT_NEXO_PATH

    def option_int(self, name: str, default: int, *, maximum: int | None = None) -> int:
        """A whole-number option (baud, currency), not negative, with a clear error otherwise.

        Only ASCII digits count: ``int()`` would also take "٣" or "１２", which no person means.
        """
        raw = self.options.get(name)
        if raw is None:
            return default
        text = raw.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
            raise AddressError(
                _("option {name}={raw!r} in {address} is not a number").format(
                    name=name, raw=raw, address=self
                )
            )
        value = int(text)
        if value < 0:
            raise AddressError(
                _("option {name}={raw!r} in {address} cannot be negative").format(
                    name=name, raw=raw, address=self
                )
            )
        if maximum is not None and value > maximum:
            raise AddressError(
                _("option {name}={raw!r} in {address} is too large (at most {maximum})").format(
                    name=name, raw=raw, address=self, maximum=maximum
                )
            )
        return value

    def option_float(
        self, name: str, default: float, *, maximum: float = MAX_OPTION_SECONDS
    ) -> float:
        """A duration option in seconds (timers, timeouts), with a clear error when it is odd.

        ``inf`` would disable a timer and ``nan`` compares false with everything, so a wait
        loop would never end; negative or longer-than-a-day values are typos. All are refused.
        """
        raw = self.options.get(name)
        if raw is None:
            return default
        text = raw.strip()
        try:
            if not text.isascii():
                raise ValueError(text)
            value = float(text)
        except ValueError:
            raise AddressError(
                _("option {name}={raw!r} in {address} is not a number").format(
                    name=name, raw=raw, address=self
                )
            ) from None
        if not math.isfinite(value):
            raise AddressError(
                _("option {name}={raw!r} in {address} must be a finite number").format(
                    name=name, raw=raw, address=self
                )
            )
        if value < 0:
            raise AddressError(
                _("option {name}={raw!r} in {address} cannot be negative").format(
                    name=name, raw=raw, address=self
                )
            )
        if value > maximum:
            raise AddressError(
                _(
                    "option {name}={raw!r} in {address} is too long (at most {maximum:g} seconds)"
                ).format(name=name, raw=raw, address=self, maximum=maximum)
            )
        return value


def parse_address(text: str) -> Address:
    """Parse an address string, raising AddressError with the reason when it is not one.

    Args:
        text: what the user typed or the ledger stored.

    Returns:
        The parsed Address.
    """
    text = text.strip()
    if not text:
        raise AddressError(_("empty device address"))
    if _BARE_DEVICE.match(text):
        return Address("zvt", "serial", text, {})
    if "://" not in text:
        raise AddressError(
            _(
                "{text!r} is not a device address (expected e.g. zvt+serial:///dev/ttyACM0, "
                "zvt+tcp://HOST:PORT or a device path like /dev/ttyUSB0)"
            ).format(text=text)
        )
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed or malformed [IPv6] host
        raise AddressError(
            _("{text!r} is not a valid address: {exc}").format(text=text, exc=exc)
        ) from None
    family, plus, link = parts.scheme.partition("+")
    if not plus or family not in FAMILIES:
        raise AddressError(
            _("unknown address scheme {scheme!r} in {text!r} (known: {join})").format(
                scheme=parts.scheme,
                text=text,
                join=", ".join(f"{f}+{lk}" for f in FAMILIES for lk in LINKS[f]),
            )
        )
    if link not in LINKS[family]:
        raise AddressError(
            _("{family} terminals are not reached over {link!r} (use one of {join})").format(
                family=family, link=link, join=", ".join(LINKS[family])
            )
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if family == "nexo":
        # before anything that quotes the text back: a refused address must not echo a secret
        _check_nexo_options(options)
    if link == "serial":
        target = parts.path
        if parts.netloc:
            # ``zvt+serial://COM3`` is what display() renders for a bare COM port; anything else
            # in the host slot (``zvt+serial://dev/ttyACM0``) would silently open the wrong path.
            if parts.path or not _BARE_DEVICE.match(parts.netloc):
                raise AddressError(
                    _(
                        "{text!r}: a serial device path needs three slashes (zvt+serial:///dev/ttyACM0)"
                    ).format(text=text)
                )
            target = parts.netloc
        if not target:
            raise AddressError(
                _("{text!r} names no serial device (zvt+serial:///dev/ttyACM0)").format(text=text)
            )
    elif link == "tcp":
        if not parts.hostname:
            raise AddressError(_("{text!r} names no host (zvt+tcp://HOST:PORT)").format(text=text))
        try:
            port = parts.port
        except ValueError:
            raise AddressError(_("{text!r} has an invalid port").format(text=text)) from None
        if port == 0:
            raise AddressError(_("{text!r} has an invalid port (0)").format(text=text))
        if port is None:
            port = DEFAULT_TCP_PORT[family]
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        target = f"{host}:{port}"
    elif link == "https":
        target = _nexo_target(parts, text)
    elif link == "usb":
        # adb+usb://SERIAL or adb+usb://VID:PID (hex), or adb+usb:// for the only device
        target = (parts.netloc + parts.path).strip("/")
    else:
        target = (parts.netloc + parts.path).strip("/")
        if not target:
            raise AddressError(
                _("{text!r} names no scenario ({family}+sim://activated)").format(
                    text=text, family=family
                )
            )
    return Address(family, link, target, options)


def _check_nexo_options(options: dict[str, str]) -> None:
    """Refuse a passphrase, unknown options and a malformed POIID in a nexo address.

    The messages never quote the address: it may hold the very secret being refused.
    """
    if "passphrase" in options:
        raise AddressError(
            _(
                "a nexo address must not hold the passphrase: put it in a key file (key=FILE, "
                "mode 600) or in the station settings"
            )
        )
    unknown = sorted(set(options) - set(NEXO_OPTIONS))
    if unknown:
        raise AddressError(
            _("unknown option {name} in a nexo address (known: {known})").format(
                name=repr(unknown[0][:40]), known=", ".join(NEXO_OPTIONS)
            )
        )
    poiid = options.get("poiid")
    if poiid is not None and not _POIID.fullmatch(poiid):
        raise AddressError(
            _("poiid={poiid} is not a terminal POIID (MODEL-SERIAL, e.g. V400m-324688179)").format(
                poiid=repr(poiid[:70])
            )
        )
    for name in ("ca", "key"):
        value = options.get(name)
        if value is not None and (not value.strip() or "\x00" in value or len(value) > 4096):
            raise AddressError(
                _("option {name} in a nexo address must be a file path").format(name=name)
            )


def _nexo_target(parts: SplitResult, text: str) -> str:
    """``host:port/path`` of a nexo address, port 8443 and path ``/nexo`` when not given."""
    if not parts.hostname:
        raise AddressError(
            _("{text!r} names no host (nexo+https://HOST:8443/nexo)").format(text=text)
        )
    try:
        port = parts.port
    except ValueError:
        raise AddressError(_("{text!r} has an invalid port").format(text=text)) from None
    if port == 0:
        raise AddressError(_("{text!r} has an invalid port (0)").format(text=text))
    if parts.username is not None or parts.password is not None:
        # not quoted back: what sits before the @ may be somebody's password
        raise AddressError(_("a nexo address takes no user name or password"))
    path = parts.path or DEFAULT_NEXO_PATH
    if not _NEXO_PATH.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        raise AddressError(
            _("{text!r}: {path!r} is not a terminal path (e.g. /nexo)").format(
                text=text, path=path[:70]
            )
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port or DEFAULT_TCP_PORT['nexo']}{path}"
