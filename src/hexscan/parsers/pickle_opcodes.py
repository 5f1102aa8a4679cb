"""The opcode handlers of the pickle machine, one method per opcode (mixed into ``_Machine``).

Each handler does what CPython's unpickler does to the stack, memo and metastack, with symbolic
values; globals and calls go through the machine's ``_import``/``_call``/``_construct``, which
record them. Handlers raise ``_Malformed``/``_Limit`` (never anything else on purpose); the
driver turns every exception into a recorded malformation.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable
from typing import Any

from hexscan.parsers.pickle_calls import _as_args, _as_kwargs, legacy_module_class
from hexscan.parsers.pickle_reader import (
    _FIXED_RUNS,
    _OPNAMES,
    _TEXT_APPEND_RUNS,
    _Limit,
    _Malformed,
    _run_struct,
)
from hexscan.parsers.pickle_text import _TextOpcodes
from hexscan.parsers.pickle_values import (
    Buffer,
    Map,
    Persistent,
    Ref,
    Seq,
    Unknown,
    UnknownExtension,
    is_const,
    render,
)
from hexscan.parsers.pickle_view import ExtensionUse, PersistentRef

EXTENSION_REGISTRY: dict[int, tuple[str, str]] = {
    code: key
    for key, code in getattr(
        copyreg, "_extension_registry", {}
    ).items()  # a copy, never registered into
}
"""Copy of the standard copyreg extension registry at import (empty unless something registered)."""


class _OpcodeHandlers(_TextOpcodes):
    """Opcode methods; the state (stack, memo, reader ...) and helpers live in ``_Machine``."""

    # Provided by _Machine (declared here for readers and type checkers).
    r: Any
    limits: Any
    stack: list[Any]
    metastack: list[list[Any]]
    memo: dict[int, Any]
    rec: Any
    op_code: int
    op_offset: int
    protocol: int
    frame_end: int
    stream_opcodes: int
    truncated_values: int

    def _handler_table(self) -> list[Callable[[], Any] | None]:
        table: list[Callable[[], Any] | None] = [None] * 256
        for code, name in _OPNAMES.items():
            table[code] = getattr(self, f"_op_{name.lower()}")
        return table

    # constants --------------------------------------------------------

    def _fixed_run(self) -> None:
        """BINFLOAT/BININT/BININT1/BININT2 and the directly following same opcodes, at once."""
        r, code = self.r, self.op_code
        single, pattern, fmt, width = _FIXED_RUNS[code]
        self.stack.append(single.unpack(r.take(width - 1))[0])
        pos = r.pos
        if pos < len(r.buf) and r.buf[pos] == code:  # a run follows
            match = pattern.match(r.buf, pos)
            if match:
                count = (match.end() - pos) // width
                self.stack.extend(_run_struct(fmt, count).unpack_from(r.buf, pos))
                r.pos = match.end()
                self.stream_opcodes += count
                self._check_limits()

    _op_binfloat = _op_binint = _op_binint1 = _op_binint2 = _fixed_run

    def _text_append_run(self) -> bool:
        """Protocol 0 ``F1.5\\na`` / ``I7\\na`` runs appended to a list on the stack top."""
        r = self.r
        target = self.stack[-1] if self.stack else None
        if not (isinstance(target, Seq) and target.kind == "list"):
            return False
        pattern, parse = _TEXT_APPEND_RUNS[self.op_code]
        match = pattern.match(r.buf, r.pos - 1)  # the opcode byte is still in the buffer
        if not match:
            return False
        count = r.buf.count(b"\n", r.pos - 1, match.end())
        room = max(self.limits.max_kept_items - len(target.items), 0)
        if room:
            end = min(match.end(), r.pos - 1 + 44 * room)
            whole_lines = r.buf[r.pos - 1 : end].split(b"\na")[:-1]  # the last piece may be cut
            target.items.extend(parse(line[1:]) for line in whole_lines[:room])
        target.count += count
        r.pos = match.end()
        self.stream_opcodes += 2 * count - 1
        self._check_limits()
        return True

    def _op_long1(self) -> None:
        self.stack.append(int.from_bytes(self.r.take(self.r.take(1)[0]), "little", signed=True))

    def _op_long4(self) -> None:
        size = self._int_arg("<i", 4)
        value = self._value(size, "bytes")
        self.stack.append(
            int.from_bytes(value, "little", signed=True)
            if isinstance(value, bytes)
            else Unknown("huge int")
        )

    def _op_binstring(self) -> None:
        self._push_latin1(self._value(self._int_arg("<i", 4), "bytes"))

    def _op_short_binstring(self) -> None:
        self._push_latin1(self._value(self.r.take(1)[0], "bytes"))

    def _push_latin1(self, value: Any) -> None:
        self.stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)

    def _op_short_binunicode(self) -> None:
        self.stack.append(self._value(self.r.byte(), "str"))

    def _op_binunicode(self) -> None:
        self.stack.append(self._value(self._int_arg("<I", 4), "str"))

    def _op_binunicode8(self) -> None:
        self.stack.append(self._value(self._int_arg("<Q", 8), "str"))

    def _op_short_binbytes(self) -> None:
        self.stack.append(self._value(self.r.byte(), "bytes"))

    def _op_binbytes(self) -> None:
        self.stack.append(self._value(self._int_arg("<I", 4), "bytes"))

    def _op_binbytes8(self) -> None:
        self.stack.append(self._value(self._int_arg("<Q", 8), "bytes"))

    def _op_bytearray8(self) -> None:
        self.stack.append(self._value(self._int_arg("<Q", 8), "bytearray"))

    def _op_none(self) -> None:
        self.stack.append(None)

    def _op_newtrue(self) -> None:
        self.stack.append(True)

    def _op_newfalse(self) -> None:
        self.stack.append(False)

    def _op_next_buffer(self) -> None:
        self.stack.append(Buffer())

    def _op_readonly_buffer(self) -> None:
        top = self._top()
        if isinstance(top, Buffer):
            top.readonly = True

    # containers -------------------------------------------------------

    def _op_empty_list(self) -> None:
        self.stack.append(Seq("list"))

    def _op_empty_tuple(self) -> None:
        self.stack.append(Seq("tuple"))

    def _op_empty_dict(self) -> None:
        self.stack.append(Map())

    def _op_empty_set(self) -> None:
        self.stack.append(Seq("set"))

    def _op_list(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq.capped("list", items, self.limits.max_kept_items))

    def _op_tuple(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq.capped("tuple", items, self.limits.max_kept_items))

    def _small_tuple(self, size: int) -> None:
        if len(self.stack) < size:
            raise _Malformed("stack underflow")
        items = self.stack[-size:]
        del self.stack[-size:]
        self.stack.append(Seq("tuple", items))

    def _op_tuple1(self) -> None:
        self._small_tuple(1)

    def _op_tuple2(self) -> None:
        self._small_tuple(2)

    def _op_tuple3(self) -> None:
        self._small_tuple(3)

    def _op_frozenset(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq.capped("frozenset", items, self.limits.max_kept_items))

    def _op_dict(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise _Malformed("odd number of items for DICT")
        mapping = Map()
        mapping.store(list(zip(items[::2], items[1::2], strict=True)), self.limits.max_kept_items)
        self.stack.append(mapping)

    def _op_append(self) -> None:
        value = self._pop()
        self._append(self._top(), [value], single=True)

    def _op_appends(self) -> None:
        items = self._pop_mark()
        self._append(self._top(), items)

    def _op_setitem(self) -> None:
        value = self._pop()
        key = self._pop()
        self._store_items(self._top(), [(key, value)])

    def _op_setitems(self) -> None:
        items = self._pop_mark()
        pairs = list(zip(items[::2], items[1::2], strict=False))
        if len(items) % 2:  # pickle.py stores the whole pairs before it fails (_pickle.c does not)
            self._store_items(self._top(), pairs)
            raise _Malformed("odd number of items for SETITEMS")
        self._store_items(self._top(), pairs)

    def _op_additems(self) -> None:
        items = self._pop_mark()
        self._add_items(self._top(), items)

    # stack and memo ---------------------------------------------------

    def _op_mark(self) -> None:
        if len(self.metastack) >= self.limits.max_nesting:
            raise _Limit("max_nesting", f"more than {self.limits.max_nesting} nested MARKs")
        self.metastack.append(self.stack)
        self.stack = []

    def _op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def _op_pop_mark(self) -> None:
        self._pop_mark()

    def _op_dup(self) -> None:
        self.stack.append(self._top())

    def _memo_put(self, index: int) -> None:
        memo = self.memo
        if index not in memo and (index < 0 or len(memo) >= self.limits.max_memo_entries):
            if index < 0:
                raise _Malformed("negative memo index")
            raise _Limit(
                "max_memo_entries", f"more than {self.limits.max_memo_entries} memo entries"
            )
        memo[index] = self.stack[-1]

    def _memo_get(self, index: int) -> None:
        try:
            self.stack.append(self.memo[index])
        except KeyError:
            raise _Malformed(f"memo key {index} has never been stored") from None

    def _op_binput(self) -> None:
        self._memo_put(self.r.byte())

    def _op_long_binput(self) -> None:
        self._memo_put(self._int_arg("<I", 4))

    def _op_memoize(self) -> None:
        self._memo_put(len(self.memo))

    def _op_binget(self) -> None:
        self._memo_get(self.r.byte())

    def _op_long_binget(self) -> None:
        self._memo_get(self._int_arg("<I", 4))

    # globals, calls, objects ------------------------------------------

    def _op_global(self) -> None:
        module = self._name_line()
        name = self._name_line()
        self.stack.append(self._import(module, name))

    def _op_stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if isinstance(module, str) and isinstance(name, str):
            self.stack.append(self._import(module, name))
        elif any(is_const(v) and not isinstance(v, str) for v in (module, name)):
            raise _Malformed("STACK_GLOBAL requires str module and name")
        else:
            unresolved = Ref("?", f"{render(module)}.{render(name)}")
            self._record(unresolved, "referenced", f"find_class({render(module)}, {render(name)})")
            self.stack.append(unresolved)

    def _op_inst(self) -> None:
        module = self._name_line()
        name = self._name_line()
        cls = self._import(module, name)
        instance = self._instantiate(cls, self._pop_mark())
        self.stack.append(instance)

    def _op_obj(self) -> None:
        items = self._pop_mark()
        if not items:
            raise _Malformed("OBJ without a class")
        self.stack.append(self._instantiate(items[0], items[1:]))

    def _op_newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        self.stack.append(self._construct(cls, _as_args(args), {}))

    def _op_newobj_ex(self) -> None:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        self.stack.append(self._construct(cls, _as_args(args), _as_kwargs(kwargs)))

    def _op_reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        self.stack.append(self._call(func, _as_args(args), {}))

    def _op_build(self) -> None:
        state = self._pop()
        self._build(self._top(), state)

    def _extension(self, code: int) -> None:
        key = EXTENSION_REGISTRY.get(code)
        self.rec.extensions.append(ExtensionUse(self.op_offset, code, *(key or (None, None))))
        if key:
            self.stack.append(self._import(*key))
            return
        self.stack.append(UnknownExtension(code))

    def _op_ext1(self) -> None:
        self._extension(self.r.take(1)[0])

    def _op_ext2(self) -> None:
        self._extension(self._int_arg("<H", 2))

    def _op_ext4(self) -> None:
        self._extension(self._int_arg("<i", 4))

    def _persistent(self, pid: Any) -> None:
        self.rec.persistent_count += 1
        if len(self.rec.persistent) < 16:
            self.rec.persistent.append(PersistentRef(self.op_offset, render(pid)))
        cls = legacy_module_class(pid)
        self.stack.append(Persistent(pid) if cls is None else cls)

    def _op_persid(self) -> None:
        self._persistent(self._name_line())

    def _op_binpersid(self) -> None:
        self._persistent(self._pop())

    # framing ----------------------------------------------------------

    def _op_proto(self) -> None:
        self.protocol = self.r.take(1)[0]
        if self.protocol > 5:
            raise _Malformed(f"unsupported pickle protocol {self.protocol}")

    def _op_stop(self) -> bool:
        if not self.stack:
            raise _Malformed("STOP with an empty stack")
        if self.frame_end > self.r.offset:
            self._stop_inside_frame()
        return True
