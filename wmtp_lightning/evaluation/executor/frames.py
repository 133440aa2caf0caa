"""Length-prefixed messages over raw pipe file descriptors (no buffering, no pickling).

A frame is a 4-byte big-endian length followed by that many bytes. Readers pass a size limit, so
a peer that announces a huge frame is refused before anything is allocated.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

Wait = Callable[..., None]  # wait(fd) until readable, wait(fd, True) until writable

HEADER = struct.Struct(">I")


class FrameError(ValueError):
    """The peer sent something that is not a well-formed frame within the size limit."""


def send(fd: int, payload: bytes, wait: Wait | None = None) -> None:
    """Write one frame; loops over partial writes (pipes accept at most their buffer at once).

    With `wait`, `fd` may be non-blocking and `wait` runs until it is writable.
    """
    data = memoryview(HEADER.pack(len(payload)) + payload)
    while data:
        if wait is not None:
            wait(fd, True)
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            continue
        data = data[n:]


def _read_exact(fd: int, n: int, wait: Wait | None) -> bytes | None:
    chunks = []
    while n:
        if wait is not None:
            wait(fd)
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, limit: int, wait: Wait | None = None) -> bytes | None:
    """Read one frame; None on a clean end of stream before a frame starts."""
    header = _read_exact(fd, HEADER.size, wait)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > limit:
        raise FrameError(f"message of {size} bytes is over the limit of {limit}")
    payload = _read_exact(fd, size, wait)
    if payload is None:
        raise FrameError("stream ended inside a message")
    return payload
