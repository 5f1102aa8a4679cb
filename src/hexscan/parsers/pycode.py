"""Read the structure of marshalled Python code without unmarshalling it.

Keras stores a Lambda layer's function as ``marshal.dumps(func.__code__)``. Turning those
bytes into a live code object is exactly what an attacker wants, so this module walks the
marshal format itself (type byte, optional reference flag, payload) and only collects
text: the names a code object uses (``co_names``: globals, attributes, imports), its
string constants, and the same for nested code objects. No object is ever built.

The code-object header differs between Python versions; each layout is tried and the one
that consumes the bytes exactly wins: Python 2 (4 int32), 3.0-3.7 (5), 3.8-3.10 (6, with
``co_posonlyargcount``), 3.11+ (5, with qualname, localspluskinds and exception table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Bounds: objects visited, nesting depth, longest string kept.
MAX_OBJECTS = 200_000
MAX_DEPTH = 100
_STRING_CAP = 1024

_FLAG_REF = 0x80


class MarshalError(ValueError):
    """The bytes are not a marshalled object of the expected shape."""


@dataclass(frozen=True)
class _Layout:
    """One code-object header: leading int32 count, objects, int32 position, trailing objects.

    ``names_at`` is the index (among the objects) of co_names, ``consts_at`` of co_consts.
    """

    label: str
    ints: int
    before_lineno: int
    after_lineno: int
    names_at: int = 2
    consts_at: int = 1


#: Tried in order; the first that consumes the whole payload exactly is taken.
LAYOUTS = (
    _Layout("3.11+", 5, 8, 2),
    _Layout("3.8-3.10", 6, 8, 1),
    _Layout("3.0-3.7", 5, 8, 1),
    _Layout("2.x", 4, 8, 1),
)


@dataclass
class CodeFacts:
    """What a marshalled code object uses: names, string constants, nested code count."""

    layout: str = ""
    names: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    code_objects: int = 0

    def all_names(self) -> set[str]:
        return set(self.names)


class _Null:
    """marshal's NULL (ends a dict)."""


_NULL = _Null()


class _Reader:
    def __init__(self, data: bytes, layout: _Layout) -> None:
        self.data = data
        self.pos = 0
        self.layout = layout
        self.refs: list[object] = []
        self.count = 0
        self.facts = CodeFacts(layout.label)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise MarshalError("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MarshalError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int32(self) -> int:
        return int.from_bytes(self.take(4), "little", signed=True)

    def size(self) -> int:
        """A count or length: every item takes at least a byte, so it fits what remains."""
        n = self.int32()
        if n < 0 or n > len(self.data) - self.pos:
            raise MarshalError("implausible length")
        return n

    def obj(self, depth: int) -> object:
        self.count += 1
        if self.count > MAX_OBJECTS:
            raise MarshalError("too many objects")
        if depth > MAX_DEPTH:
            raise MarshalError("nested too deeply")
        code = self.byte()
        flag, kind = code & _FLAG_REF, chr(code & 0x7F)
        slot = None
        if flag:
            slot = len(self.refs)
            self.refs.append(None)
        value = self._payload(kind, depth)
        if slot is not None:
            self.refs[slot] = value
        return value

    def _payload(self, kind: str, depth: int) -> object:  # noqa: C901 - one case per type
        if kind == "0":
            return _NULL
        if kind in "NFTS.":
            return None
        if kind == "i":
            self.take(4)
            return None
        if kind == "I":
            self.take(8)
            return None
        if kind == "g":
            self.take(8)
            return None
        if kind == "y":
            self.take(16)
            return None
        if kind == "f":
            self.take(self.byte())
            return None
        if kind == "x":
            self.take(self.byte())
            self.take(self.byte())
            return None
        if kind == "l":
            n = self.int32()
            if abs(n) > len(self.data):
                raise MarshalError("implausible long")
            self.take(abs(n) * 2)
            return None
        if kind in "stuaA":
            return self._text(kind, self.size())
        if kind in "zZ":
            return self._text(kind, self.byte())
        if kind == "R":
            self.int32()
            return None
        if kind == ")":
            return [self.obj(depth + 1) for _ in range(self.byte())]
        if kind in "([<>":
            return [self.obj(depth + 1) for _ in range(self.size())]
        if kind == "{":
            while not isinstance(self.obj(depth + 1), _Null):
                self.obj(depth + 1)
            return None
        if kind == "r":
            index = self.int32()
            if not 0 <= index < len(self.refs):
                raise MarshalError("reference to an unknown object")
            return self.refs[index]
        if kind == "c":
            return self._code(depth)
        if kind == ":":
            for _ in range(3):
                self.obj(depth + 1)
            return None
        raise MarshalError(f"unknown marshal type {kind!r}")

    def _text(self, kind: str, n: int) -> str | bytes:
        raw = self.take(n)
        if kind == "s":
            return raw
        return raw[:_STRING_CAP].decode("utf-8", "backslashreplace")

    def _code(self, depth: int) -> str:
        lay = self.layout
        for _ in range(lay.ints):
            self.int32()
        objs = [self.obj(depth + 1) for _ in range(lay.before_lineno)]
        self.int32()
        for _ in range(lay.after_lineno):
            self.obj(depth + 1)
        if not isinstance(objs[0], bytes):
            raise MarshalError("co_code is not bytes")
        names, consts = objs[lay.names_at], objs[lay.consts_at]
        if not isinstance(names, list) or not isinstance(consts, list):
            raise MarshalError("co_names/co_consts are not tuples")
        self.facts.code_objects += 1
        self.facts.names.extend(n for n in names if isinstance(n, str))
        self._strings(consts, 0)
        return "<code>"

    def _strings(self, value: object, depth: int) -> None:
        if depth > 8:
            return
        if isinstance(value, str) and value != "<code>":
            self.facts.strings.append(value)
        elif isinstance(value, bytes):
            self.facts.strings.append(value[:_STRING_CAP].decode("latin-1"))
        elif isinstance(value, list):
            for item in value[:4096]:
                self._strings(item, depth + 1)


def inspect_code(data: bytes) -> CodeFacts:
    """The names and strings of a marshalled code object; MarshalError if none fits."""
    if not data or (data[0] & 0x7F) != ord("c"):
        raise MarshalError("not a marshalled code object")
    last: MarshalError | None = None
    for layout in LAYOUTS:
        reader = _Reader(data, layout)
        try:
            reader.obj(0)
        except (MarshalError, RecursionError) as exc:
            last = exc if isinstance(exc, MarshalError) else MarshalError("nested too deeply")
            continue
        if reader.pos == len(data):
            return reader.facts
        last = MarshalError("trailing bytes after the code object")
    raise last or MarshalError("unreadable code object")
