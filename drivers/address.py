"""Device addresses: one string names a terminal everywhere (CLI, logs, ledger, certificates).

Forms understood here::

    zvt+serial:///dev/ttyACM0?baud=9600&password=000000
    zvt+tcp://10.0.0.5:20007?password=123456
    zvt+sim://activated            (an in-process simulated terminal, for tests and demos)
    adb+usb://0820533061           (an Android POS on USB by serial; adb+usb://2fb8:2201 by ID)
    adb+tcp://127.0.0.1:5555       (adb over TCP; port 5555 by default)
    adb+sim://activated?model=pax-a920
    /dev/ttyUSB0, COM3             (a bare serial device: ZVT over serial is assumed)

Query parameters are family options (baud, password, timeouts). The password never appears in
``Address.display()`` because addresses end up in logs and the ledger.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import AddressError
from .i18n import _

FAMILIES = ("zvt", "adb")
LINKS = {"zvt": ("serial", "tcp", "sim"), "adb": ("usb", "tcp", "sim")}
DEFAULT_TCP_PORT = {"zvt": 20007, "adb": 5555}  # PA00P016 §2.2; adb connect's default
SECRET_OPTIONS = frozenset({"password"})
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
        query = f"?{urlencode(options)}" if options else ""
        if self.link == "serial":
            return f"{self.family}+serial://{self.target}{query}"
        return f"{self.family}+{self.link}://{self.target}{query}"

    @property
    def host_port(self) -> tuple[str, int]:
        """The (host, port) of a TCP address."""
        if self.link != "tcp":
            raise AddressError(_("{address} is not a TCP address").format(address=self))
        host, _colon, port = self.target.rpartition(":")
        return host.strip("[]"), int(port)

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
