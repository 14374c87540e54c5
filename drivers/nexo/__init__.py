"""nexo Retailer / Adyen Terminal API: the sans-IO codec (both roles), driver and terminal.

The codec is :mod:`.messages` (JSON layout, header rules, builders and typed readers for the
host and the device role), :mod:`.additional` (the ``AdditionalResponse`` formats) and
:mod:`.crypto` (Adyen's local encryption, AdyenCryptoVersion 1). None of them does I/O or reads a
clock: timestamps, ServiceIDs and nonces come from the caller, so the simulator and the driver
share one implementation and tests are deterministic.
"""

# Loaded first so that importing any codec module (builders, readers) finds messages complete:
# messages re-exports them and they import its records.
from . import messages as messages
