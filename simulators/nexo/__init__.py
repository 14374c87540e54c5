"""A simulated Adyen payment terminal speaking nexo Retailer (Terminal API) JSON over HTTPS.

``state.py`` (the terminal's state, from model profiles and scenarios as TOML data),
``device.py`` (how it answers each request), ``engine.py`` (JSON, envelope, encryption, error
replies, faults), ``server.py`` (HTTPS), ``tls.py`` (private CA and leaf), ``events.py``
(EventNotifications), ``tms.py`` (the Adyen backend link), ``simulator.py`` (all of it running)
and ``pytest_fixtures.py`` (``nexo_terminal``). See ``simulators/README.md``.
"""
