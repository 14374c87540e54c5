"""The Adyen Management API v3 backend (``kind = "adyen"``).

Settings in the backends file::

    [backend.adyen]
    kind = "adyen"
    url = "https://management-test.adyen.com/v3"   # or management-live; the root incl. /v3
    api_key_env = "POSDIAG_ADYEN_KEY"              # X-API-Key of an API credential with the
                                                   # roles "Management API—Terminal actions read"
                                                   # and "Management API—Assign Terminal"
    depot_merchant = "DepotReturns"                # release → {"merchantId": …, "inventory": true}
    # depot_company = "DepotCompany"               # or → {"companyId": …} (exactly one of them)
    # max_pages = 20                               # pages of 100 followed for one serial
"""

from __future__ import annotations

import re

from ...text import mask_identifier
from ..config import BackendConfig
from ..model import BackendConfigError
from ..registry import http_client
from .backend import AdyenBackend
from .client import MAX_PAGES, AdyenApi

__all__ = ["AdyenBackend", "connect"]

_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
_VERSIONED = re.compile(r"https?://[^?#]+/v\d{1,2}")


def connect(config: BackendConfig) -> AdyenBackend:
    """The connector for one configured Adyen account.

    Raises:
        BackendConfigError: a missing or malformed setting (named, never its value).
    """
    where = f"backend {config.name!r}"
    if not _VERSIONED.fullmatch(config.url):
        raise BackendConfigError(
            f"{where}: url must be the Management API root ending in /v3 "
            f"(e.g. https://management-test.adyen.com/v3)"
        )
    key = config.require("api_key")
    if not isinstance(key, str) or not 8 <= len(key) <= 1024 or not _visible_ascii(key):
        raise BackendConfigError(
            f"{where}: api_key must be the API credential's key (printable ASCII, no spaces)"
        )
    merchant = config.setting("depot_merchant")
    company = config.setting("depot_company")
    if (merchant is None) == (company is None):
        raise BackendConfigError(
            f"{where}: set exactly one of depot_merchant (a merchant account's inventory) or "
            f"depot_company (the company account)"
        )
    account = merchant if merchant is not None else company
    setting = "depot_merchant" if merchant is not None else "depot_company"
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise BackendConfigError(f"{where}: {setting} must be an Adyen account id")
    max_pages = config.setting("max_pages", MAX_PAGES)
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or not 1 <= max_pages <= 100:
        raise BackendConfigError(f"{where}: max_pages must be a whole number from 1 to 100")
    if merchant is not None:
        target: dict[str, object] = {"merchantId": account, "inventory": True}
        label = f"the inventory of merchant account {mask_identifier(account)}"
    else:
        target = {"companyId": account}
        label = f"company account {mask_identifier(account)}"
    api = AdyenApi(config.name, http_client(config), key, max_pages=max_pages)
    return AdyenBackend(config.name, api, target, label)


def _visible_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable() and " " not in text
