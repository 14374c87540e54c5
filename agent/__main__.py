"""``python -m posdiag.agent``: the same as the ``posdiag`` command (its launcher included)."""

from .launch import main

main()
