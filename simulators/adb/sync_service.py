"""adbd's file sync service (``sync:``) on the simulated terminal's file tree.

One :class:`SyncService` per ``sync:`` stream. It is fed the stream's bytes and returns what
adbd would write back, and whether adbd would end the service (and close the stream) there.
Each behaviour is the one AOSP ``file_sync_service.cpp`` has, as the ``shell`` uid (2000) on a
user build:

* ``STAT`` is ``lstat``; a failure cannot be reported, so it answers mode, size and mtime 0.
* ``STA2``/``LST2`` (with ``stat_v2``) are ``stat``/``lstat`` with the errno in ``error``.
* ``LIST`` lists ``.`` and ``..`` too; a directory that cannot be opened (missing, not a
  directory, no read permission) is answered with ``DONE`` alone, no error. ``LIS2`` (with
  ``ls_v2``) is the same with v2 entries.
* ``RECV`` of a missing or unreadable file fails with ``open failed: <strerror>``; of a
  directory, which ``open`` accepts, with ``read failed: Is a directory``. Content goes out as
  ``DATA`` chunks of at most 64 KiB, then ``DONE``.
* ``SEND "path,mode"``: a regular file or symlink already there is unlinked first; missing
  parent directories are created (``secure_mkdirs``, 0775); the user permission bits are copied
  to group and other; the content is taken in ``DATA`` chunks and the mtime from ``DONE``, then
  ``OKAY``. A failure answers ``FAIL`` (``couldn't create file: …``, ``secure_mkdirs failed:
  …``) and keeps reading ``DATA`` until the host's ``DONE``, then ends the service. A symlink
  mode (``S_IFLNK``) makes a symlink whose target is the single ``DATA`` chunk.
* ``QUIT`` ends the service; an unknown id fails with ``unknown command '<id>' (<hex>)``; a
  path over 1024 bytes with ``path too long``. Every failure ends the service: adbd closes the
  stream after ``FAIL``.

Input is bounded: paths by the protocol's 1024 bytes, DATA chunks by 64 KiB, and a pushed file
by :data:`MAX_PUSH` (beyond it: ``write failed: No space left on device``), so a host cannot
make the simulator hold unbounded memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat as st
import struct
from dataclasses import dataclass, field

from posdiag.drivers.adb.protocol import NEED_DATA
from posdiag.drivers.adb.sync import (
    SYNC_DATA_MAX,
    SYNC_HEADER_SIZE,
    SYNC_PATH_MAX,
    encode_data,
    encode_dent,
    encode_dent_v2,
    encode_done,
    encode_fail,
    encode_list_done,
    encode_okay,
    encode_stat_response,
    encode_stat_v2_response,
)

from .files import SHELL_UID, FileTree, Node, normalise

MAX_PUSH = 64 * 1024 * 1024
"""Largest file a push may write into the simulator (a real unit's free space, roughly)."""

_HEADER = struct.Struct("<4sI")


@dataclass
class SyncReply:
    """What the service writes back for the bytes it was given, and whether it ended."""

    data: bytes = b""
    done: bool = False


@dataclass
class _Send:
    """A SEND in progress: where, and what has arrived (or the failure already reported)."""

    path: str
    mode: int
    link: bool
    content: bytearray = field(default_factory=bytearray)
    failed: bool = False


class SyncService:
    """One ``sync:`` stream's service.

    Args:
        tree: the terminal's files (shared with the shell; changes persist).
        features: the features the device advertised (``stat_v2``, ``ls_v2`` allow v2 ids).
        uid: who adbd runs as (``shell`` on a user build).
    """

    def __init__(self, tree: FileTree, features: frozenset[str], uid: int = SHELL_UID) -> None:
        self.tree = tree
        self.features = features
        self.uid = uid
        self._buffer = bytearray()
        self._send: _Send | None = None
        self.ended = False

    def receive(self, data: bytes) -> SyncReply:
        """Take the stream's bytes; answer every complete request among them."""
        reply = SyncReply()
        if self.ended:
            return reply
        self._buffer += data
        out = bytearray()
        while not self.ended:
            step = self._step()
            if step is NEED_DATA:
                break
            assert isinstance(step, bytes)
            out += step
        reply.data = bytes(out)
        reply.done = self.ended
        return reply

    # --- framing ---------------------------------------------------------------------------------

    def _step(self) -> bytes | object:
        if len(self._buffer) < SYNC_HEADER_SIZE:
            return NEED_DATA
        raw_id, length = _HEADER.unpack_from(self._buffer)
        if self._send is not None:
            return self._send_step(raw_id, length)
        request = raw_id.decode("latin-1")
        if request == "QUIT":
            del self._buffer[:SYNC_HEADER_SIZE]
            self.ended = True
            return b""
        if length > SYNC_PATH_MAX:
            self.ended = True
            return encode_fail("path too long")
        if len(self._buffer) < SYNC_HEADER_SIZE + length:
            return NEED_DATA
        path = bytes(self._buffer[SYNC_HEADER_SIZE : SYNC_HEADER_SIZE + length])
        del self._buffer[: SYNC_HEADER_SIZE + length]
        return self._request(raw_id, path.decode("utf-8", "surrogateescape"))

    def _request(self, raw_id: bytes, path: str) -> bytes:
        request = raw_id.decode("latin-1")
        if request == "STAT":
            return self._stat_v1(path)
        if request in ("STA2", "LST2") and "stat_v2" in self.features:
            return self._stat_v2(raw_id, path, follow=request == "STA2")
        if request == "LIST":
            return self._list(path, v2=False)
        if request == "LIS2" and "ls_v2" in self.features:
            return self._list(path, v2=True)
        if request == "RECV":
            return self._recv(path)
        if request == "SEND":
            return self._begin_send(path)
        self.ended = True
        code = int.from_bytes(raw_id, "little")
        shown = raw_id.decode("latin-1")
        return encode_fail(f"unknown command '{shown}' ({code:08x})")

    # --- STAT / LIST -----------------------------------------------------------------------------

    def _stat_v1(self, path: str) -> bytes:
        try:
            node = self.tree.stat(path, self.uid, follow=False)
        except OSError:
            return encode_stat_response(0, 0, 0)
        return encode_stat_response(node.mode, node.size, node.mtime)

    def _stat_v2(self, raw_id: bytes, path: str, *, follow: bool) -> bytes:
        try:
            node = self.tree.stat(path, self.uid, follow=follow)
        except OSError as exc:
            return encode_stat_v2_response(raw_id.decode("latin-1"), error=exc.errno or errno.EIO)
        return encode_stat_v2_response(raw_id.decode("latin-1"), **_stat_fields(node))

    def _list(self, path: str, *, v2: bool) -> bytes:
        try:
            directory = self.tree.stat(path, self.uid, follow=True)
            entries = self.tree.listdir(path, self.uid)
        except OSError:
            return encode_list_done(v2=v2)
        parent = self.tree.lookup(posixpath.dirname(normalise(path))) or directory
        rows = [(".", directory), ("..", parent), *entries]
        out = bytearray()
        for name, node in rows:
            if v2:
                out += encode_dent_v2(name, **_stat_fields(node))
            else:
                out += encode_dent(node.mode, node.size, node.mtime, name)
        return bytes(out + encode_list_done(v2=v2))

    # --- RECV ------------------------------------------------------------------------------------

    def _recv(self, path: str) -> bytes:
        try:
            node = self.tree.stat(path, self.uid, follow=True)
            if not self.tree.can(node, "r", self.uid):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as exc:
            self.ended = True
            return encode_fail(f"open failed: {exc.strerror}")
        if node.kind == "dir":
            self.ended = True
            return encode_fail(f"read failed: {os.strerror(errno.EISDIR)}")
        return encode_data(node.data) + encode_done()

    # --- SEND ------------------------------------------------------------------------------------

    def _begin_send(self, spec: str) -> bytes:
        """SEND: unlink and create the file before any DATA is read, as adbd does.

        A failure is therefore answered at once, then the DATA is drained until DONE.
        """
        path, comma, mode_text = spec.rpartition(",")
        if not comma:
            self.ended = True
            return encode_fail("missing , in ID_SEND")
        mode = _strtoul(mode_text)
        if mode is None:
            self.ended = True
            return encode_fail("bad mode")
        send = self._send = _Send(normalise(path), mode, st.S_ISLNK(mode))
        if send.link:
            return b""  # the symlink is made once its target (the DATA) has arrived
        mode &= 0o777
        mode |= (mode >> 3) & 0o070  # adbd copies the user bits to group and other
        mode |= (mode >> 3) & 0o007
        send.mode = mode
        try:
            self._prepare(send.path)
            self.tree.write(send.path, b"", mode, uid=self.uid)
        except _SendFailure as failure:
            send.failed = True
            return encode_fail(str(failure))
        except OSError as exc:
            send.failed = True
            return encode_fail(f"couldn't create file: {exc.strerror}")
        return b""

    def _send_step(self, raw_id: bytes, length: int) -> bytes | object:
        send = self._send
        assert send is not None
        request = raw_id.decode("latin-1")
        if request == "DONE":
            del self._buffer[:SYNC_HEADER_SIZE]
            self._send = None
            if send.failed:
                self.ended = True
                return b""
            return self._finish_send(send, mtime=length)
        if request != "DATA" or length > SYNC_DATA_MAX:
            self._send = None
            self.ended = True
            return b"" if send.failed else encode_fail("invalid data message")
        if len(self._buffer) < SYNC_HEADER_SIZE + length:
            return NEED_DATA
        chunk = bytes(self._buffer[SYNC_HEADER_SIZE : SYNC_HEADER_SIZE + length])
        del self._buffer[: SYNC_HEADER_SIZE + length]
        if send.failed:
            return b""  # adbd drains DATA after a failure until the host's DONE
        if len(send.content) + len(chunk) > MAX_PUSH:
            send.failed = True
            send.content = bytearray()
            return encode_fail(f"write failed: {os.strerror(errno.ENOSPC)}")
        send.content += chunk
        return b""

    def _prepare(self, path: str) -> None:
        """Unlink what a push replaces and create the missing parent directories."""
        existing = self.tree.lookup(path, follow=False)
        if existing is not None and (st.S_ISREG(existing.mode) or st.S_ISLNK(existing.mode)):
            with contextlib.suppress(OSError):  # adbd ignores it; the open that follows reports
                self.tree.remove(path, uid=self.uid)
        head = posixpath.dirname(path)
        if self.tree.lookup(head) is None:
            try:
                self.tree.mkdir(head, 0o775, parents=True, uid=self.uid)
            except OSError as exc:
                raise _SendFailure(f"secure_mkdirs failed: {exc.strerror}") from None

    def _finish_send(self, send: _Send, *, mtime: int) -> bytes:
        try:
            if send.link:
                self._prepare(send.path)
                self._symlink(send.path, bytes(send.content).split(b"\0", 1)[0].decode())
                return encode_okay()
            node = self.tree.write(send.path, bytes(send.content), send.mode, mtime, self.uid)
            node.mtime = mtime  # utime() from the DONE, also for a file that was there
        except _SendFailure as failure:
            self.ended = True
            return encode_fail(str(failure))
        except OSError as exc:
            self.ended = True
            return encode_fail(f"write failed: {exc.strerror}")
        return encode_okay()

    def _symlink(self, path: str, target: str) -> None:
        parent_path, name = posixpath.split(path)
        try:
            parent = self.tree.stat(parent_path, self.uid)
        except OSError as exc:
            raise _SendFailure(f"symlink failed: {exc.strerror}") from None
        if name in parent.children:
            raise _SendFailure(f"symlink failed: {os.strerror(errno.EEXIST)}")
        if not self.tree.can(parent, "w", self.uid) or self.tree.is_readonly(
            self.tree.realpath(parent_path)
        ):
            raise _SendFailure(f"symlink failed: {os.strerror(errno.EACCES)}")
        self.tree.add(path, "link", 0o777, self.uid, self.uid, target=target)


class _SendFailure(Exception):
    """A push failed with this adbd text."""


def _stat_fields(node: Node) -> dict[str, int]:
    """The v2 stat fields of a node (dev, ino, mode, nlink, uid, gid, size, times)."""
    return {
        "dev": 0xFD00,
        "ino": node.ino,
        "mode": node.mode,
        "nlink": node.nlink,
        "uid": node.uid,
        "gid": node.gid,
        "size": node.size,
        "atime": node.mtime,
        "mtime": node.mtime,
        "ctime": node.mtime,
    }


def _strtoul(text: str) -> int | None:
    """C's ``strtoul(text, NULL, 0)`` as adbd reads SEND's mode: leading digits, base by prefix.

    None where adbd answers "bad mode" (errno set: an out-of-range value).
    """
    text = text.strip()
    base = 10
    if text[:2].lower() == "0x":
        base, text = 16, text[2:]
    elif text.startswith("0") and len(text) > 1:
        base, text = 8, text[1:]
    digits = "0123456789abcdef"[:base]
    end = 0
    while end < len(text) and text[end].lower() in digits:
        end += 1
    value = int(text[:end], base) if end else 0
    return None if value > 0xFFFFFFFFFFFFFFFF else value & 0xFFFFFFFF
