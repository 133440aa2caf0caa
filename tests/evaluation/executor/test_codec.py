"""The plain-data wire format: what round-trips exactly, what travels as its base value, what is refused."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import json
import math

import pytest

from wmtp_lightning.evaluation.executor import codec


def roundtrip(value, **kw):
    return codec.decode(codec.loads(codec.dumps(codec.encode(value, **kw))))


PLAIN = [
    None,
    True,
    0,
    -(10**5000),  # beyond JSON's digit limit: travels as hex
    2**64,
    0.1 + 0.2,
    -0.0,
    float("inf"),
    "",
    "é\ud800",  # a lone surrogate survives
    b"\x00\xff",
    bytearray(b"ab"),
    1 + 2j,
    [1, [2, (3, 4)], {5: {6}}],
    (1,),
    frozenset({1, "a"}),
    {(1, 2): [None], "k": b"v"},
    range(1, 10, 3),
    Ellipsis,
    int,
    collections.OrderedDict([(2, 1), (1, 2)]),
    collections.Counter("abca"),
    collections.deque([1, 2], maxlen=3),
    fractions.Fraction(3, 7),
    decimal.Decimal("1.10"),
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
    datetime.date(2020, 1, 2),
    datetime.time(1, 2),
    datetime.timedelta(days=-1, seconds=3),
]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_values_roundtrip_exactly(value):
    back = roundtrip(value)
    assert type(back) is type(value)
    assert back == value or (isinstance(value, float) and math.isnan(value) and math.isnan(back))
    if isinstance(value, float):
        assert math.copysign(1, back) == math.copysign(1, value)  # -0.0 stays -0.0


def test_nan_and_containers_keep_their_type():
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip([(1, 2), [1, 2]]) == [(1, 2), [1, 2]]
    assert type(roundtrip([(1, 2)])[0]) is tuple  # a tuple never turns into a list
    dd = roundtrip(collections.defaultdict(list, {"a": [1]}))
    assert type(dd) is collections.defaultdict and dd.default_factory is list and dd == {"a": [1]}
    assert roundtrip({1: 2}.keys()) == {1: 2}.keys()
    assert list(roundtrip({1: 2}.values())) == [2]
    assert roundtrip({1: 2}.items()) == {1: 2}.items()


def test_iterators_travel_as_their_items_only_when_asked():
    assert list(roundtrip(map(str, [1, 2]), iterators=True)) == ["1", "2"]
    assert list(roundtrip((x * x for x in range(3)), iterators=True)) == [0, 1, 4]
    with pytest.raises(codec.Unserializable):
        codec.encode(iter([1]))


class Always:
    def __eq__(self, other):
        return True


class Liar(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


def test_subclasses_travel_as_their_base_value():
    Point = collections.namedtuple("Point", "x y")
    assert roundtrip(Point(1, 2)) == (1, 2) and type(roundtrip(Point(1, 2))) is tuple
    liar = roundtrip(Liar("wrong"))
    assert type(liar) is str and liar != "right"  # the overridden __eq__ does not travel
    assert type(roundtrip(True)) is bool


def test_objects_without_a_plain_form_are_refused_or_handed_to_other():
    for value in (Always(), lambda: 1, object(), [Always()], {1: math}):
        with pytest.raises(codec.Unserializable):
            codec.encode(value)
    assert codec.encode([Always()], other=lambda v: ["h", 7]) == ["l", [["h", 7]]]
    loop: list = []
    loop.append(loop)
    with pytest.raises(codec.Unserializable, match="contains itself"):
        codec.encode(loop)


@pytest.mark.parametrize(
    "message",
    [
        b"not json",
        b'{"a": 1}',  # objects are never data
        b'["l"]',
        b'["l", 1]',
        b'["s", [["l", []]]]',  # unhashable set member
        b'["d", [1]]',  # odd key/value list
        b'["T", "eval"]',  # only allow-listed builtin types
        b'["T", "__import__"]',
        b'["x", 1]',  # unknown tag
        b'["h", 1]',  # a handle where none is allowed
        b'["b", "\\u0100"]',  # not a byte
        b'["fr", 1, 0]',
        b'["dq", [], -1]',
        b'["I", "zz"]',
        b"[" * 100_000 + b"]" * 100_000,  # nested too deeply
        b"1" * 5000,  # more digits than int() converts
    ],
)
def test_malformed_messages_are_protocol_errors(message):
    with pytest.raises(codec.ProtocolError):
        codec.decode(codec.loads(message))


def test_handles_are_resolved_by_the_caller():
    node = json.loads('["l", [["h", 3]]]')
    assert codec.decode(node, handle=lambda n: ("object", n[1])) == [("object", 3)]
