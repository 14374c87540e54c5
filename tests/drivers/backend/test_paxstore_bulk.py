"""PAXSTORE bulk lookup: many units from the paged terminal list, judged unit by unit."""

from __future__ import annotations

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.model import Binding, TerminalKey
from posdiag.drivers.backend.registry import open_backend
from posdiag.simulators.backend.catalog import create_backend_simulator


def test_lookup_many_reads_every_page_and_agrees_with_single_lookups() -> None:
    seeds = [f"BULK{i:05d}={('bound', 'unbound', 'disabled')[i % 3]}" for i in range(150)]
    with create_backend_simulator("paxstore", seeds) as sim:
        (config,) = parse_backends(sim.backends_toml("paxstore"))
        backend = open_backend(config)
        try:
            keys = [TerminalKey(serial=s) for s in ("BULK00001", "BULK00149", "BULK00002", "NOPE1")]
            many = backend.lookup_many(keys)  # type: ignore[attr-defined]
            single = {key: backend.lookup(key) for key in keys}
        finally:
            backend.close()
    assert [many[k].binding for k in keys] == [
        Binding.UNBOUND,  # 1 % 3
        Binding.DISABLED,  # 149 % 3 == 2, on the second page
        Binding.DISABLED,
        Binding.UNKNOWN,
    ]
    assert all(many[k].binding is single[k].binding for k in keys)
    assert all(many[k].merchant == single[k].merchant for k in keys)
