"""What one station process can serve, and its terminals spread over several past that.

A process needs descriptors for every busy terminal (:func:`raise_open_file_limit` lifts a
desktop's default limit of 1024) and one core for the Python work of its terminals.

A station's workers are threads: while they wait on cables they cost nothing, but parsing
answers, recording them and signing certificates is Python work under one interpreter lock, so
a process saturates one core near :data:`SLOTS_PER_PROCESS` busy terminals (bench figure 3).
Past that, the addresses are dealt round-robin to ``processes`` children (``python -m
posdiag.agent.station_shards``), each a :class:`~posdiag.agent.station.Station` over its share
with the same settings and the same batch id; the parent keeps the one live table.

The pipe between them, one JSON object per line:

* parent → child (stdin): ``{"config": {...}, "addresses": [...]}`` on the first line; then
  nothing. Stdin closing (the parent died or stopped) stops the child as Ctrl-C would: running
  wipes end after their current journaled step.
* child → parent (stdout): ``{"slot": SlotResult.to_json()}`` for every update, then
  ``{"done": true}``. Logs go to stderr.

Each child writes the ledger through its own group-committing writer; the ledger orders the
processes' transactions, and the per-terminal claims (``ledger/claims.py``) keep two processes
from ever driving one terminal. A child that dies leaves its unfinished terminals ``failed``
with a reason; their wipes stay open in the ledger and resume on the next run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from posdiag.drivers.i18n import _

from .slots import SlotResult

if TYPE_CHECKING:
    from .station import Station

log = structlog.get_logger(__name__)

SLOTS_PER_PROCESS = {"check": 256, "wipe": 16}
"""Busy terminals one process serves before its interpreter lock binds, by mode (measured in
bench figure 3 on 2 cores with the terminals in other processes). A check costs the station
~4 ms of CPU per Android terminal, so one process keeps up with 256 at once (it used 73 % of a
core) and a second process only adds its start-up (~1 s of imports: 256 checks took 2.85 s
sharded, 1.54 s not). A wipe costs ~60 ms (the PDF certificate half of it), so a process
saturates its core near 16 wipes at once; past that a second process on the second core helps
(256 wipes: 14.9 s in two processes, 17.9 s in one)."""
FILES_PER_SLOT = 12
"""Descriptors one busy slot may hold: its port (and pyserial's two abort pipes) or socket, its
ledger connection's database, journal and shared-memory files, a claim's lock file, and a
certificate being written."""


def raise_open_file_limit(slots: int) -> None:
    """Lift this process's open-file limit to what ``slots`` busy terminals need, if allowed.

    Many desktops start processes with a soft limit of 1024 descriptors; 256 terminals at once
    need more, and the kernel lets a process raise its soft limit up to the hard one. A limit
    that cannot be raised is left as it is (a slot that runs out of descriptors fails alone).
    """
    import resource

    wanted = 256 + slots * FILES_PER_SLOT
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("station.file_limit", soft=soft, hard=hard, error=str(exc))


FINAL_STAGES = frozenset({"done", "failed", "unplugged"})
MAX_LINE = 1 << 20
"""A child's line is one slot update (a few hundred bytes); anything longer is a broken child."""


def process_count(terminals: int, mode: str = "check", cores: int | None = None) -> int:
    """How many processes ``terminals`` at once need in ``mode``.

    One per :data:`SLOTS_PER_PROCESS` of the mode, at most one per core: more would only trade
    the interpreter lock for the scheduler.
    """
    available = cores or os.cpu_count() or 1
    per_process = SLOTS_PER_PROCESS.get(mode, SLOTS_PER_PROCESS["check"])
    return max(1, min(available, math.ceil(terminals / per_process)))


def shardable(station: Station, addresses: Sequence[str]) -> bool:
    """Whether the station's work can move to other processes unchanged.

    Not when something lives in this process: an operator being asked about settlement,
    configured backends (their rate limiter is shared by the workers), a replaced opener
    (tests), or terminals on an in-process simulated bus.
    """
    from .connect import open_terminal

    return (
        station.ask_settled is None
        and not station.backends
        and station.opener is open_terminal
        and not any("bus=" in address for address in addresses)
    )


@dataclass(frozen=True)
class ShardConfig:
    """What a child needs to be the same station (the policy's data, not its file)."""

    mode: str
    policy: dict[str, Any]
    operator: str | None
    settle: bool
    assume_yes: bool
    out_dir: str | None
    ledger_url: str | None
    max_parallel: int
    deadline_s: float
    password: str | None
    busy_timeout: float
    batch: str
    continued: bool
    release: bool
    vouched: tuple[str, ...]
    organisation: str | None
    location: str | None
    logo: str | None
    scope: dict[str, bool] | None

    @classmethod
    def of(cls, station: Station, batch: str, max_parallel: int) -> ShardConfig:
        """The station's settings for one child running ``max_parallel`` workers."""
        scope = station.scope
        return cls(
            mode=station.mode,
            policy=station.policy.data,
            operator=station.operator,
            settle=station.settle,
            assume_yes=station.assume_yes,
            out_dir=None if station.out_dir is None else str(station.out_dir),
            ledger_url=station.ledger_url,
            max_parallel=max_parallel,
            deadline_s=station.deadline_s,
            password=station.password,
            busy_timeout=station.busy_timeout,
            batch=batch,
            continued=station.continued_batch is not None,
            release=station.release,
            vouched=tuple(sorted(station.vouched)),
            organisation=station.organisation,
            location=station.location,
            logo=None if station.logo is None else str(station.logo),
            scope=None
            if scope is None
            else {"quick": scope.quick, "host_dialup": scope.host_dialup},
        )

    def station(self, on_event: Callable[[SlotResult], None]) -> Station:
        """The child's station."""
        from posdiag.drivers.model import CheckScope

        from .policy import Policy
        from .station import Station

        station = Station(
            "wipe" if self.mode == "wipe" else "check",
            Policy(self.policy),
            operator=self.operator,
            settle=self.settle,
            assume_yes=self.assume_yes,
            out_dir=None if self.out_dir is None else Path(self.out_dir),
            ledger_url=self.ledger_url,
            max_parallel=self.max_parallel,
            deadline_s=self.deadline_s,
            on_event=on_event,
            password=self.password,
            busy_timeout=self.busy_timeout,
            batch=self.batch if self.continued else None,
            release=self.release,
            vouched=self.vouched,
            organisation=self.organisation,
            location=self.location,
            logo=None if self.logo is None else Path(self.logo),
            scope=None if self.scope is None else CheckScope(**self.scope),
            processes=1,
        )
        station.assigned_batch = self.batch
        return station


def slot_from_json(data: dict[str, Any]) -> SlotResult:
    """A slot update as a child printed it (``SlotResult.to_json``)."""
    steps = data.get("steps") or (0, 0)
    return SlotResult(
        address=str(data["address"]),
        family=str(data["family"]),
        model=data.get("model"),
        serial=data.get("serial"),
        stage=str(data.get("stage", "queued")),
        verdict_or_outcome=data.get("verdict_or_outcome"),
        reasons=tuple(str(r) for r in data.get("reasons") or ()),
        certificate=data.get("certificate"),
        elapsed_s=float(data.get("elapsed_s", 0.0)),
        steps_done=int(steps[0]),
        steps_total=int(steps[1]),
        already_erased=bool(data.get("already_erased", False)),
    ).cleaned()


class _Child:
    """One worker process and what it reported."""

    def __init__(self, config: ShardConfig, addresses: list[str]) -> None:
        self.addresses = addresses
        self.finals: dict[str, SlotResult] = {}
        self.last: dict[str, SlotResult] = {}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "posdiag.agent.station_shards"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        assert self.process.stdin is not None
        # The password travels on the pipe, never on the command line (ps shows argv).
        self.process.stdin.write(
            json.dumps({"config": config.__dict__, "addresses": addresses}) + "\n"
        )
        self.process.stdin.flush()

    def read(self, on_event: Callable[[SlotResult], None]) -> None:
        """Relay the child's updates until it ends."""
        assert self.process.stdout is not None
        for line in iter(lambda: self.process.stdout.readline(MAX_LINE), ""):  # type: ignore[union-attr]
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("station.shard_garbled", line=line[:200])
                continue
            if "slot" not in message:
                continue
            update = slot_from_json(message["slot"])
            self.last[update.address] = update
            if update.stage in FINAL_STAGES:
                self.finals[update.address] = update
            on_event(update)
        self.process.wait()

    def stop(self) -> None:
        """Ask the child to stop as Ctrl-C would (its wipes end after the current step)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def run_in_processes(
    station: Station, addresses: list[str], batch: str, processes: int
) -> list[SlotResult]:
    """Work ``addresses`` in ``processes`` children; results in the order of ``addresses``."""
    from .slots import shown_address

    shares = [addresses[index::processes] for index in range(processes)]
    per_child = max(1, math.ceil(station.max_parallel / processes))
    config = ShardConfig.of(station, batch, per_child)
    lock = threading.Lock()

    def relay(update: SlotResult) -> None:
        if station.on_event is None:
            return
        with lock:  # one display, several readers
            try:
                station.on_event(update)
            except Exception as exc:  # a broken display must not break the station
                log.warning("station.event_failed", error=str(exc))

    children = [_Child(config, share) for share in shares if share]
    log.info("station.sharded", processes=len(children), terminals=len(addresses))
    readers = [
        threading.Thread(target=child.read, args=(relay,), name="station-shard", daemon=True)
        for child in children
    ]
    for reader in readers:
        reader.start()
    while any(reader.is_alive() for reader in readers):
        if station.stop_event.wait(0.1):
            for child in children:
                child.stop()
            break
    for reader in readers:
        reader.join()
    finals: dict[str, SlotResult] = {}
    for child in children:
        finals.update(child.finals)
        for address in child.addresses:
            shown = shown_address(address)
            if shown in finals or (shown not in child.last and child.process.returncode == 0):
                continue
            stopped = station.stop_event.is_set()
            ended = child.last.get(shown)
            finals[shown] = SlotResult(
                shown,
                ended.family if ended else (shown.split("+", 1)[0] if "+" in shown else "zvt"),
                model=ended.model if ended else None,
                serial=ended.serial if ended else None,
                stage="failed",
                verdict_or_outcome="aborted" if station.mode == "wipe" else "unreachable",
                reasons=(
                    _("the station was stopped")
                    if stopped
                    else _("the station's worker process stopped unexpectedly: run it again"),
                ),
            )
            relay(finals[shown])
    ordered = [finals.get(shown_address(address)) for address in addresses]
    return [result for result in ordered if result is not None]


def _child_main() -> int:
    """A child: read its share, run it, print every update; stop when stdin closes."""
    from .logs import configure_logging

    configure_logging("console", os.environ.get("POSDIAG_SHARD_LOG_LEVEL", "error"), sys.stderr)
    first = sys.stdin.readline(1 << 24)
    request = json.loads(first)
    config = ShardConfig(**{**request["config"], "vouched": tuple(request["config"]["vouched"])})
    out_lock = threading.Lock()

    def emit(update: SlotResult) -> None:
        line = json.dumps({"slot": update.to_json()}, ensure_ascii=False)
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    station = config.station(emit)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_args: station.stop_event.set())

    def stop_when_parent_goes() -> None:
        sys.stdin.read()
        station.stop_event.set()

    threading.Thread(target=stop_when_parent_goes, daemon=True).start()
    station.run(list(request["addresses"]))
    with out_lock:
        sys.stdout.write(json.dumps({"done": True}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
