"""Plain data across the sandbox boundary: tagged JSON with an allow-listed decoder.

The judge never holds an object made by the program: every value the program returns reaches it
as data, rebuilt here from a closed set of types. A JSON scalar stands for itself (None, bool,
int, float incl. NaN/±inf and -0.0, str incl. lone surrogates); every JSON array is a tagged node:

    ["l", [..]] list      ["t", [..]] tuple     ["s", [..]] set       ["fs", [..]] frozenset
    ["d", [k, v, ..]] dict                      ["I", "-1f.."] int too long for JSON digits
    ["b", "latin-1"] bytes  ["ba", ..] bytearray  ["c", re, im] complex  ["r", a, b, c] range
    ["E"] Ellipsis        ["T", "int"] a builtin type (e.g. `remove_datatype(xs, int)`)
    ["od" | "C", [k, v, ..]] OrderedDict / Counter   ["dd", "list" | null, [k, v, ..]] defaultdict
    ["dq", [..], maxlen] deque   ["fr", n, d] Fraction   ["dec", "1.5"] Decimal
    ["dt" | "date" | "time", iso] naive datetime types   ["td", days, s, us] timedelta
    ["it", [..]] an iterator or generator, materialized ("list(candidate(x))" keeps working)
    ["dk" | "dv", [..]] / ["di", [k, v, ..]] dict key / value / item views
    ["h", id, ...] a handle: an object that stays in the program's process (see judge.py)

Subclasses travel as their base value (a namedtuple as a tuple, an IntEnum as an int, a str
subclass as its characters), so an overridden `__eq__` never reaches the judge. Decoding rejects
anything else with `ProtocolError`; encoding an object with no plain form calls `other` (the
candidate turns it into a handle) or raises `Unserializable`.
"""

from __future__ import annotations

import collections
import collections.abc
import datetime
import decimal
import fractions
import json
import sys
from collections.abc import Callable
from typing import Any

BUILTIN_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (int, float, complex, str, bytes, bytearray, bool, list, tuple, dict, set, frozenset, object, type)
}
JSON_INT_BITS = 12_000  # ~3600 decimal digits, below the int<->str conversion limit of 4300
_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


class Unserializable(TypeError):
    """A value with no plain-data form (a function, a class instance, a recursive container)."""


class ProtocolError(ValueError):
    """A message that does not decode to plain data."""


def dumps(message: Any) -> bytes:
    """JSON text of an already encoded message (ASCII, so lone surrogates survive)."""
    return json.dumps(message, ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode("ascii")


def loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError, MemoryError) as err:
        raise ProtocolError(f"not a JSON message ({type(err).__name__})") from None


def encode(value: Any, other: Callable[[Any], list] | None = None, iterators: bool = False) -> Any:
    """The JSON-ready form of `value`; objects with no plain form go to `other` (or raise).

    With `iterators`, an iterator or generator travels as the list of its items (what
    `list(result)` would see), so a program returning `map(...)` is judged on its items.
    """
    on_path: set[int] = set()

    def seq(items: Any, container: Any) -> list:
        key = id(container)
        if key in on_path:
            raise Unserializable("a container that contains itself")
        on_path.add(key)
        try:
            return [enc(x) for x in items]
        finally:
            on_path.discard(key)

    def flat(pairs: Any, container: Any) -> list:
        return seq((x for kv in pairs for x in kv), container)

    def enc(v: Any) -> Any:
        t = type(v)
        if v is None or t is bool or t is str or t is float:
            return v
        if t is int:
            return v if v.bit_length() < JSON_INT_BITS else ["I", format(v, "x")]
        if t is list:
            return ["l", seq(v, v)]
        if t is tuple:
            return ["t", seq(v, v)]
        if t is dict:
            return ["d", flat(v.items(), v)]
        if t is set:
            return ["s", seq(v, v)]
        return enc_other(v, t)

    def enc_other(v: Any, t: type) -> Any:
        if t is frozenset:
            return ["fs", seq(v, v)]
        if t is bytes:
            return ["b", v.decode("latin-1")]
        if t is bytearray:
            return ["ba", bytes(v).decode("latin-1")]
        if t is complex:
            return ["c", v.real, v.imag]
        if t is range:
            return ["r", enc(v.start), enc(v.stop), enc(v.step)]
        if v is Ellipsis:
            return ["E"]
        if t is type and BUILTIN_TYPES.get(v.__name__) is v:
            return ["T", v.__name__]
        if t is collections.OrderedDict:
            return ["od", flat(v.items(), v)]
        if t is collections.Counter:
            return ["C", flat(v.items(), v)]
        if t is collections.defaultdict:
            factory = v.default_factory
            name = factory.__name__ if BUILTIN_TYPES.get(getattr(factory, "__name__", "")) is factory else None
            return ["dd", name, flat(v.items(), v)]
        if t is collections.deque:
            return ["dq", seq(v, v), v.maxlen]
        if t is fractions.Fraction:
            return ["fr", enc(v.numerator), enc(v.denominator)]
        if t is decimal.Decimal:
            return ["dec", str(v)]
        if t in (datetime.datetime, datetime.time) and v.tzinfo is None:
            return ["dt" if t is datetime.datetime else "time", v.isoformat()]
        if t is datetime.date:
            return ["date", v.isoformat()]
        if t is datetime.timedelta:
            return ["td", v.days, v.seconds, v.microseconds]
        if t in _DICT_VIEWS:
            tag = ("dk", "dv", "di")[_DICT_VIEWS.index(t)]
            return [tag, flat(v, v) if tag == "di" else seq(v, v)]
        # Subclasses of plain types travel as their base value.
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return enc(int.__int__(v))
        if isinstance(v, float):
            return float.__float__(v)
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, tuple):
            return ["t", seq(tuple.__iter__(v), v)]
        if isinstance(v, list):
            return ["l", seq(list.__iter__(v), v)]
        if isinstance(v, dict):
            return ["d", flat(dict.items(v), v)]
        if isinstance(v, (set, frozenset)):
            return ["s" if isinstance(v, set) else "fs", seq(set(v) if isinstance(v, set) else frozenset(v), v)]
        if iterators and isinstance(v, collections.abc.Iterator):
            return ["it", seq(list(v), v)]
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(v, numpy.generic):
            return enc(v.item())  # numpy scalars compare like the Python number they hold
        if other is not None:
            return other(v)
        raise Unserializable(f"{t.__module__}.{t.__qualname__} is not plain data")

    return enc(value)


def decode(node: Any, handle: Callable[[list], Any] | None = None) -> Any:
    """The value `node` stands for, built only from allow-listed types; anything else raises."""

    def dec(n: Any) -> Any:
        t = type(n)
        if n is None or t is bool or t is int or t is float or t is str:
            return n
        if t is not list or not n or type(n[0]) is not str:
            raise ProtocolError(f"unexpected JSON value of type {t.__name__}")
        build = BUILDERS.get(n[0])
        if build is None:
            if n[0] == "h" and handle is not None:
                return handle(n)
            raise ProtocolError(f"unknown tag {n[0][:20]!r}")
        return build(n)

    def items(n: list, index: int = 1) -> list:
        if len(n) <= index or type(n[index]) is not list:
            raise ProtocolError(f"tag {n[0]!r}: expected a list of items")
        return [dec(x) for x in n[index]]

    def pairs(n: list, index: int = 1) -> list[tuple]:
        xs = items(n, index)
        if len(xs) % 2:
            raise ProtocolError(f"tag {n[0]!r}: odd number of key/value items")
        return list(zip(xs[::2], xs[1::2]))

    def scalar(n: list, index: int, *types: type) -> Any:
        if len(n) <= index or type(n[index]) not in types:
            raise ProtocolError(f"tag {n[0]!r}: item {index} must be {' or '.join(t.__name__ for t in types)}")
        return n[index]

    def an_int(n: list, index: int) -> int:
        v = dec(n[index]) if len(n) > index else None
        if type(v) is not int:
            raise ProtocolError(f"tag {n[0]!r}: item {index} must be an int")
        return v

    def builtin_type(name: Any) -> type:
        if type(name) is not str or name not in BUILTIN_TYPES:
            raise ProtocolError(f"not an allowed builtin type: {str(name)[:40]!r}")
        return BUILTIN_TYPES[name]

    BUILDERS: dict[str, Callable[[list], Any]] = {
        "l": items,
        "t": lambda n: tuple(items(n)),
        "s": lambda n: set(items(n)),
        "fs": lambda n: frozenset(items(n)),
        "d": lambda n: dict(pairs(n)),
        "I": lambda n: int(scalar(n, 1, str), 16),
        "b": lambda n: scalar(n, 1, str).encode("latin-1"),
        "ba": lambda n: bytearray(scalar(n, 1, str).encode("latin-1")),
        "c": lambda n: complex(scalar(n, 1, float, int), scalar(n, 2, float, int)),
        "r": lambda n: range(an_int(n, 1), an_int(n, 2), an_int(n, 3)),
        "E": lambda n: Ellipsis,
        "T": lambda n: builtin_type(scalar(n, 1, str)),
        "od": lambda n: collections.OrderedDict(pairs(n)),
        "C": lambda n: collections.Counter(dict(pairs(n))),
        "dd": lambda n: collections.defaultdict(
            None if len(n) > 1 and n[1] is None else builtin_type(scalar(n, 1, str)), pairs(n, 2)
        ),
        "dq": lambda n: collections.deque(items(n), None if len(n) > 2 and n[2] is None else an_int(n, 2)),
        "fr": lambda n: fractions.Fraction(an_int(n, 1), an_int(n, 2)),
        "dec": lambda n: decimal.Decimal(scalar(n, 1, str)),
        "dt": lambda n: datetime.datetime.fromisoformat(scalar(n, 1, str)),
        "date": lambda n: datetime.date.fromisoformat(scalar(n, 1, str)),
        "time": lambda n: datetime.time.fromisoformat(scalar(n, 1, str)),
        "td": lambda n: datetime.timedelta(an_int(n, 1), an_int(n, 2), an_int(n, 3)),
        "it": lambda n: iter(items(n)),
        "dk": lambda n: dict.fromkeys(items(n)).keys(),
        "dv": lambda n: dict(enumerate(items(n))).values(),
        "di": lambda n: dict(pairs(n)).items(),
    }
    try:
        return dec(node)
    except ProtocolError:
        raise
    except (TypeError, ValueError, ArithmeticError, OverflowError, RecursionError, decimal.DecimalException) as err:
        raise ProtocolError(f"malformed value ({type(err).__name__}: {str(err)[:80]})") from None
