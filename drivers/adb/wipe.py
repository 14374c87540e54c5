"""The wipe plan of an Android smart POS: commands built from the catalogue, checked by reading.

Every command is a fixed string, or built from the catalogue's own data (package names, paths)
and from integers parsed out of device output; never from text the device sent. Each step
announces itself to whoever watches (:mod:`posdiag.drivers.activity`) as step i of n when it
runs (``pm clear`` alone can take many seconds on a slow unit), and the reads that check a
step's effect say what they read, so a wipe never sits silent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial

from ..activity import announce
from ..catalogue import AdbModelEntry
from ..errors import UnsupportedError
from ..i18n import _
from ..model import WipeStep
from ..text import clean_text
from .driver import ShellOutput
from .errors import AdbCommandError
from .parsers import parse_diskstats, parse_dumpsys_wifi, parse_ls

__all__ = ["AdbWipePlan"]


class AdbWipePlan:
    """The wipe steps of one Android terminal, run over its shell.

    Args:
        sh: runs one shell command on the terminal (connecting first if need be).
        entry: the terminal's catalogue entry (apps, paths, the reset it offers).
        installed: the packages installed (``pm list packages``): only those are cleared.
        sdk: the Android SDK level, for the message when app data sizes are not readable.
    """

    def __init__(
        self,
        sh: Callable[[str], ShellOutput],
        entry: AdbModelEntry,
        installed: Sequence[str],
        sdk: str,
    ) -> None:
        self.sh = sh
        self.entry = entry
        self.installed = frozenset(installed)
        self.sdk = sdk

    def steps(self) -> list[WipeStep]:
        """The steps in order, each announcing itself as step i of n when it runs."""
        entry = self.entry
        steps: list[tuple[str, WipeStep]] = []
        if entry.wipe.clear_payment_apps:
            for package in (*entry.payment_apps, *entry.tms_apps):
                if package not in self.installed:
                    continue  # catalogue names are examples: `pm clear` of a missing one fails
                what = (
                    _("clearing the payment app's data")
                    if package in entry.payment_apps
                    else _("clearing the management app's data")
                )
                steps.append(
                    (
                        what,
                        WipeStep(
                            f"clear:{package}",
                            _("the data of {package} (pm clear)").format(package=package),
                            partial(self._run, f"pm clear {package}"),
                            partial(self._app_data_cleared, package),
                        ),
                    )
                )
        steps.append(
            (
                _("forgetting saved Wi-Fi networks"),
                WipeStep(
                    "forget_wifi",
                    _("saved Wi-Fi networks"),
                    self._forget_networks,
                    self._no_networks,
                ),
            )
        )
        for path in entry.merchant_paths:
            folder = path.rstrip("/")
            steps.append(
                (
                    _("deleting merchant files"),
                    WipeStep(
                        f"delete:{path}",
                        _("merchant files in {path}").format(path=path),
                        # both globs: the shell's * skips hidden files, which may hold merchant data
                        partial(self._run, f"rm -rf {folder}/* {folder}/.[!.]*"),
                        partial(self._directory_empty, path),
                    ),
                )
            )
        if entry.wipe.factory_reset == "testharness":
            steps.append(
                (
                    _("resetting the terminal to factory settings"),
                    WipeStep(
                        "factory_reset",
                        _("everything on the data partition (test-harness reset, Android 10+)"),
                        partial(self._run, "cmd testharness enable"),
                        self._test_harness_done,
                        optional=True,
                        caveat=_(
                            "test-harness reset keeps the adb keys and skips the setup wizard "
                            "(persist.sys.test_harness=1): not a clean hand-back for resale"
                        ),
                    ),
                )
            )
        total = len(steps)
        return [
            dataclasses.replace(step, run=_announced(what, step.run, position, total))
            for position, (what, step) in enumerate(steps, start=1)
        ]

    def _app_data_cleared(self, package: str) -> bool:
        """Whether diskstats shows no data for the package.

        Raises:
            UnsupportedError: the sizes are not readable (Android < 8); unobservable is not done,
                and the wipe reports the step as unverified rather than erased.
        """
        announce(_("checking that the app's data is gone"))
        sizes = parse_diskstats(self.sh("dumpsys diskstats").text).app_data_sizes
        if not sizes:
            raise UnsupportedError(
                _("Android SDK {sdk} does not report per-app data sizes to the shell").format(
                    sdk=self.sdk
                )
            )
        return not sizes.get(package)

    def _run(self, command: str) -> None:
        """Run a wipe command built from catalogue data; a failure is an error, not a shrug."""
        self._require(self.sh(command), command.split()[0])

    def _test_harness_done(self) -> bool:
        """The reset leaves its mark: ``persist.sys.test_harness`` is 1 afterwards."""
        announce(_("checking the factory reset"))
        return self.sh("getprop persist.sys.test_harness").text.strip() == "1"

    def _directory_empty(self, path: str) -> bool:
        announce(_("checking that the merchant files are gone"))
        return not parse_ls(self.sh(f"ls -1Ap {path}").text)

    @staticmethod
    def _require(output: ShellOutput, what: str) -> None:
        if not output.ok:
            said = (output.stderr or output.stdout).decode("utf-8", "replace").strip()
            first = clean_text(said.splitlines()[0], 160) if said else ""
            if first:
                message = _("{command} failed (exit {code}): {said}").format(
                    command=what, code=output.exit_code, said=first
                )
            else:
                message = _("{command} failed (exit {code})").format(
                    command=what, code=output.exit_code
                )
            raise AdbCommandError(message)

    def _network_ids(self) -> list[int]:
        ids = []
        for line in self.sh("cmd wifi list-networks").text.splitlines()[1:]:
            first = line.split(maxsplit=1)[0] if line.strip() else ""
            if first.isascii() and first.isdigit():
                ids.append(int(first))  # only integers from device output reach a command
        return ids

    def _forget_networks(self) -> None:
        for network_id in sorted(self._network_ids(), reverse=True):
            self._require(self.sh(f"cmd wifi forget-network {network_id}"), "forget-network")

    def _no_networks(self) -> bool:
        announce(_("checking for saved Wi-Fi networks"))
        return not parse_dumpsys_wifi(self.sh("dumpsys wifi").text).saved_networks


def _announced(what: str, run: Callable[[], None], position: int, total: int) -> Callable[[], None]:
    """``run``, announcing ``what`` as step ``position`` of ``total`` first."""

    def announced_run() -> None:
        announce(what, done=position, total=total, unit="steps")
        run()

    return announced_run
