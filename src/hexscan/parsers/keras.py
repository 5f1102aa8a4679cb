"""Keras model files -> their configs as plain JSON values, and Lambda code as facts.

Three containers hold a Keras config: the root attributes of an H5 file (``model_config``,
``training_config``, ``keras_version``, ``backend``; read with h5py, attributes only, never
a dataset), the ``config.json`` member of a ``.keras`` zip and standalone ``model.to_json()``
files, and the per-layer ``metadata`` strings of a TF SavedModel's ``keras_metadata.pb``
(SavedMetadata{1 nodes: SavedObject{3 node_path, 4 identifier, 5 metadata}}).

Lambda functions are decoded here (base64 -> marshal structure via ``pycode``, or source
text -> names via ``tokenize``); deciding what is dangerous is the scanner's job.
"""

from __future__ import annotations

import binascii
import io
import json
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hexscan.errors import LimitExceeded, ParseError
from hexscan.parsers.pbstream import LEN, ProtoStream, malformed_as_parse_error, text
from hexscan.parsers.pycode import CodeFacts, MarshalError, inspect_code

#: Largest config (JSON text or H5 attribute) parsed.
MAX_CONFIG_BYTES = 64 * 1024 * 1024
#: Deepest JSON nesting walked, and most objects visited.
MAX_JSON_DEPTH = 200
MAX_JSON_NODES = 2_000_000
#: Largest Lambda payload decoded.
MAX_CODE_BYTES = 16 * 1024 * 1024
#: The H5 root attributes Keras writes.
H5_ATTRS = ("model_config", "training_config", "keras_version", "backend")

_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


@dataclass
class H5Config:
    """The Keras attributes of an H5 file's root group (text, or None when absent)."""

    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def is_keras(self) -> bool:
        return "model_config" in self.attrs or "training_config" in self.attrs


def parse_json(data: bytes | str, what: str) -> Any:
    """JSON text -> value; ParseError on invalid JSON or a structure too deep to walk."""
    if len(data) > MAX_CONFIG_BYTES:
        raise LimitExceeded("max_config_size", f"{what} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digits, nesting
        raise ParseError(f"{what} is not valid JSON: {str(exc)[:200]}") from exc
    return value


def read_h5_attrs(stream: BinaryIO) -> H5Config:
    """The Keras root attributes of an HDF5 file, read with h5py from a file object.

    Only attribute values are read; a fixed-size attribute larger than MAX_CONFIG_BYTES
    is refused before it is read.
    """
    import h5py  # type: ignore[import-untyped]  # core dependency, imported on first HDF5

    out = H5Config()
    try:
        with h5py.File(stream, "r") as f:
            for name in H5_ATTRS:
                if name not in f.attrs:
                    continue
                attr = h5py.h5a.open(f.id, name.encode())
                if attr.get_storage_size() > MAX_CONFIG_BYTES:
                    raise LimitExceeded("max_config_size",
                                        f"H5 attribute {name} exceeds {MAX_CONFIG_BYTES} bytes")
                out.attrs[name] = _attr_text(f.attrs[name])
    except LimitExceeded:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ParseError(f"HDF5 structure is unreadable: {str(exc)[:200]}") from exc
    return out


def _attr_text(value: Any) -> str:
    """An attribute value (bytes, str, numpy scalar/array of either) as text."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else json.dumps(value, default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def iter_keras_metadata(stream: BinaryIO, size: int | None) -> Iterator[tuple[str, str]]:
    """(node_path, metadata JSON text) of each SavedObject in ``keras_metadata.pb``."""
    ps = ProtoStream(stream, size)
    total = 0
    with malformed_as_parse_error("keras_metadata.pb"):
        for f in ps.fields():
            if f.number != 1 or f.wire_type != LEN:
                continue
            path = meta = ""
            for g in ps.fields(f.end):
                if g.wire_type != LEN:
                    continue
                if g.number == 3:
                    path = text(ps.read_capped(g, 4096)[0])
                elif g.number == 5:
                    total += g.length
                    if g.length > MAX_CONFIG_BYTES or total > 4 * MAX_CONFIG_BYTES:
                        raise LimitExceeded("max_config_size",
                                            "keras_metadata.pb holds too much metadata")
                    meta = text(ps.read(g.length))
            if meta:
                yield path, meta


def iter_objects(tree: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object in ``tree`` with its JSON-pointer-like path (bounded walk)."""
    stack: list[tuple[str, Any, int]] = [("", tree, 0)]
    visited = 0
    while stack:
        path, node, depth = stack.pop()
        visited += 1
        if visited > MAX_JSON_NODES:
            raise LimitExceeded("max_config_nodes", f"config has more than {MAX_JSON_NODES} values")
        if depth > MAX_JSON_DEPTH:
            raise LimitExceeded("max_config_depth", f"config nests deeper than {MAX_JSON_DEPTH}")
        if isinstance(node, dict):
            yield path or "/", node
            children = list(node.items())
        elif isinstance(node, list):
            children = [(str(i), v) for i, v in enumerate(node)]
        else:
            continue
        for key, value in reversed(children):
            if isinstance(value, (dict, list)):
                stack.append((f"{path}/{key}", value, depth + 1))


def iter_strings(tree: Any, limit: int = MAX_JSON_NODES) -> Iterator[str]:
    """Every string (keys and values) in a JSON tree, bounded."""
    stack = [tree]
    seen = 0
    while stack and seen < limit:
        node = stack.pop()
        seen += 1
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for k, v in node.items():
                yield str(k)
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)


@dataclass(frozen=True)
class LambdaCode:
    """What a Lambda's stored function is: bytecode facts, source names, or unreadable."""

    kind: str  # "bytecode", "source", "unreadable"
    names: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    layout: str = ""
    error: str = ""


def decode_lambda(code: str) -> LambdaCode:
    """Decode a stored Lambda function: base64 marshal, else Python source text."""
    if len(code) > MAX_CODE_BYTES:
        return LambdaCode("unreadable", error="the function is larger than the decode limit")
    stripped = code.strip()
    if stripped and _BASE64.fullmatch(stripped):
        try:
            raw = binascii.a2b_base64(stripped.encode("ascii"))
        except (binascii.Error, ValueError):
            raw = b""
        if raw and (raw[0] & 0x7F) == ord("c"):
            try:
                facts = inspect_code(raw)
            except MarshalError as exc:
                return LambdaCode("unreadable", error=f"marshalled code is unreadable: {exc}")
            return _from_facts(facts)
    return _from_source(code)


def _from_facts(facts: CodeFacts) -> LambdaCode:
    return LambdaCode("bytecode", tuple(dict.fromkeys(facts.names)),
                      tuple(dict.fromkeys(facts.strings))[:256], facts.layout)


def _from_source(code: str) -> LambdaCode:
    """Names and string literals of source text (tokenised, never compiled or parsed)."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code[:MAX_CODE_BYTES]).readline):
            if tok.type == tokenize.NAME:
                names.append(tok.string)
            elif tok.type == tokenize.STRING:
                strings.append(tok.string.strip("'\"rbuRBUfF"))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        if not names:
            return LambdaCode("unreadable", error=f"neither bytecode nor source: {exc}")
    return LambdaCode("source", tuple(dict.fromkeys(names)),
                      tuple(dict.fromkeys(strings))[:256])
