"""Figure 1: a full ZVT check against the protocol floor.

The simulated terminal runs at realistic timing (9600 baud 8N2, its modelled latencies) behind a
pseudo terminal, and the check takes the same path as ``posdiag check zvt+serial:///dev/pts/N``:
``open_terminal`` then ``inspect_terminal`` over pyserial. The simulator counts the time the wire
and the terminal were necessarily busy (``ZvtSimulator.busy_time``); a ZVT session is one message
at a time, so no ECR can go below it. The ratio check wall / floor is what posdiag adds.
"""

from __future__ import annotations

import time

from .stats import Goal, Row, Sample, Settings, ratios

FIGURE = "1 ZVT check"
SCENARIO = "activated"
GOAL = Goal("<=", 1.10)


def _one_check(time_scale: float) -> tuple[float, float, int, int]:
    """Wall seconds of one check, the simulator's floor, and the bytes each way."""
    from posdiag.agent.connect import open_terminal
    from posdiag.agent.inspect import inspect_terminal
    from posdiag.agent.policy import load_policy
    from posdiag.drivers.address import parse_address
    from posdiag.simulators.attach import PtyAttachment
    from posdiag.simulators.registry import create_zvt

    policy = load_policy(None)
    simulator = create_zvt(SCENARIO, {"time_scale": str(time_scale), "baud": "9600"})
    with PtyAttachment(simulator) as attachment:
        address = parse_address(f"zvt+serial://{attachment.path}?baud=9600")
        simulator.reset_busy_time()
        started = time.perf_counter()
        terminal = open_terminal(address)
        report = inspect_terminal(terminal, policy)
        wall = time.perf_counter() - started
        floor = simulator.busy_time
        sent, received = simulator.bytes_sent, simulator.bytes_received
    if report.identity is None or report.errors:
        raise RuntimeError(f"the check did not complete: {report.errors or 'unreachable'}")
    return wall, floor, sent, received


def run(settings: Settings) -> list[Row]:
    """Measure the check ``settings.runs`` times; each run's ratio uses its own floor."""
    time_scale = 0.1 if settings.quick else 1.0
    walls, floors = [], []
    sent = received = 0
    for _ in range(settings.runs):
        wall, floor, sent, received = _one_check(time_scale)
        walls.append(wall)
        floors.append(floor)
    wall_sample, floor_sample = Sample.of(walls), Sample.of(floors)
    note = (
        f"floor {floor_sample.median:.3f} s: {sent} bytes sent + {received} received "
        f"× 11 bits / 9600 baud + modelled latencies; scenario {SCENARIO}, pty"
    )
    if settings.quick:
        note += "; QUICK: time_scale 0.1, so fixed costs weigh 10× more"
    return [
        Row(
            FIGURE,
            "full check vs the protocol floor",
            wall_sample,
            "s",
            ratio=ratios(wall_sample, floor_sample),
            ratio_label="check wall / floor",
            goal=GOAL,
            note=note,
            extra={"floor_s": floor_sample.to_json(), "time_scale": time_scale},
        )
    ]
