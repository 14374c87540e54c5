"""``python -m posdiag.agent``: the same as the ``posdiag`` command."""

from .cli import main

main()
