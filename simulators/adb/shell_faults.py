"""The behavioural faults of :class:`~.state.Faults`, as the shell applies them per command.

``fail_command``: the command changes nothing and exits 1 with what the real one prints when it
cannot (a protected package, a busy Wi-Fi service, a read-only file system, a lock screen);
``lie_about``: its success output, exit 0, nothing done; ``power_loss_at``: the part of its
effect that lands before the power fails (the shell then raises
:class:`~.shell_base.PowerLoss`). They match the simple command after expansion, so a glob in
``rm -rf /sdcard/M/*`` is already the list of paths; a pattern in the fault's own prefix matches
the paths it expanded to.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

from . import shell_android, toybox_files
from .shell_base import Proc, ShellResult, err, ok
from .state import AndroidState

_GLOB = re.compile(r"[*?[]")


def matches(argv: list[str], spec: str) -> bool:
    """Whether a fault's command prefix (``"pm clear"``) names this simple command.

    The prefix is written as a client writes the command line (``rm -rf /sdcard/Sunmi/*``) while
    ``argv`` is after globbing (``rm -rf /sdcard/Sunmi/a.txt …``): a pattern word of the prefix
    matches the expanded word in its place.
    """
    words = spec.split()
    if not words or len(argv) < len(words):
        return False
    return all(
        arg == word or (_GLOB.search(word) is not None and fnmatch.fnmatchcase(arg, word))
        for arg, word in zip(argv, words, strict=False)
    )


def refused(argv: list[str]) -> ShellResult:
    """``fail_command``: exit 1 with what the real command prints when it cannot do it."""
    if argv[:2] == ["pm", "clear"]:
        package = argv[-1] if len(argv) > 2 else ""
        return err(
            "Exception occurred while executing 'clear':\n"
            "java.lang.SecurityException: Cannot clear data for a protected package: "
            f"{package}\n"
        )
    if argv[:2] == ["cmd", "wifi"]:
        verb = argv[2] if len(argv) > 2 else ""
        return err(
            f"Exception occurred while executing '{verb}':\n"
            "java.lang.IllegalStateException: Wi-Fi service is not ready\n"
        )
    if argv[:2] == ["cmd", "testharness"]:
        return err("Test Harness Mode cannot be enabled if there is a lock screen\n")
    if argv[0] == "rm":
        paths = [a for a in argv[1:] if not a.startswith("-")]  # globs expanded already
        if not paths:
            return err('rm: Needs 1 argument (see "rm --help")\n')
        return err("".join(f"rm: {path}: Read-only file system\n" for path in paths))
    return err(f"{argv[0]}: Input/output error\n")


def pretended(argv: list[str]) -> ShellResult:
    """``lie_about``: the success output, exit 0, and nothing done."""
    if argv[:2] == ["pm", "clear"]:
        return ok("Success\n")
    if argv[:3] == ["cmd", "wifi", "forget-network"] and len(argv) > 3:
        return ok(f"Forget successful for netId {argv[3]}\n")
    return ok()  # rm, cmd testharness enable…: silence is their success


def partly(state: AndroidState, argv: list[str], cwd: str) -> None:
    """``power_loss_at``: the part of the command's effect that lands before power fails."""
    if argv[:2] == ["pm", "clear"] and len(argv) > 2:
        app = state.app(argv[-1])
        if app is not None:
            for rel in sorted(app.data_files)[: len(app.data_files) // 2]:
                del app.data_files[rel]
    elif argv[:3] == ["cmd", "wifi", "forget-network"]:
        shell_android.cmd(Proc(argv, "", state))  # the forget is done, the answer lost
    elif argv[0] == "rm":
        flags = [a for a in argv[1:] if a.startswith("-")]
        for arg in argv[1:]:
            if not arg.startswith("-") and _exists(state, arg):
                toybox_files.rm(Proc(["rm", *flags, arg], "", state, cwd))
                return


def _exists(state: AndroidState, path: str) -> bool:
    """Whether anything is at ``path`` (a file, a directory, a link)."""
    return state.tree.lookup(posixpath.normpath(path), follow=False) is not None
