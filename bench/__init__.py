"""posdiag's benchmark suite: how far a check is from the protocol's limit and from the peers.

Run it with ``python -m bench`` (``--quick`` for CI). See ``bench/README.md`` for what each figure
measures and the latest recorded results.
"""
