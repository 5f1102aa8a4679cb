"""Darknet: the .weights header, and the weight count a .cfg network implies.

Darknet (pjreddie and AlexeyAB forks) reads, per layer in .cfg order, biases, optional
batch-norm scales/mean/variance, then the weights, as float32, and nothing else.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from hexscan.errors import LimitExceeded, ParseError

MAX_SECTIONS = 10_000
_SECTION = re.compile(r"^\[([^\]]*)\]\s*$")
#: Layers that hold no weights (and how they change the output shape is handled below).
_NO_WEIGHTS = frozenset({
    "maxpool", "max", "avgpool", "avg", "route", "shortcut", "upsample", "reorg", "reorg3d",
    "yolo", "region", "detection", "softmax", "soft", "dropout", "cost", "logistic",
    "l2norm", "sam", "scale_channels", "activation", "gaussian_yolo", "contrastive",
    "empty", "silence", "crop", "normalization", "lrn", "local_avgpool",
})
#: Layers with weights whose count this reader does not model (recurrent, local ...).
_UNMODELLED = frozenset({"rnn", "gru", "lstm", "crnn", "conv_lstm", "local", "history",
                         "implicit_add", "implicit_mul", "deformable"})
_NET = frozenset({"net", "network"})
KNOWN_SECTIONS = _NO_WEIGHTS | _UNMODELLED | _NET | {
    "convolutional", "conv", "deconvolutional", "deconv", "connected", "conn", "batchnorm"}


@dataclass(frozen=True, slots=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int
    size: int  # header bytes


def parse_header(head: bytes) -> WeightsHeader:
    if len(head) < 16:
        raise ParseError("darknet weights shorter than their header")
    major, minor, revision = struct.unpack_from("<iii", head)
    if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000:
        if len(head) < 20:
            raise ParseError("darknet weights shorter than their header")
        return WeightsHeader(major, minor, revision, struct.unpack_from("<Q", head, 12)[0], 20)
    return WeightsHeader(major, minor, revision, struct.unpack_from("<i", head, 12)[0], 16)


@dataclass
class Section:
    name: str
    line: int
    options: dict[str, str] = field(default_factory=dict)

    def int(self, key: str, default: int) -> int:
        raw = self.options.get(key)
        if raw is None:
            return default
        try:
            return int(float(raw.split(",")[0].strip()))
        except (ValueError, OverflowError):
            raise ParseError(f"[{self.name}] line {self.line}: {key}={raw!r} is not a number") \
                from None


def parse_cfg(text: str) -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = _SECTION.match(line)
        if m:
            sections.append(Section(m.group(1).strip().lower(), number))
            if len(sections) > MAX_SECTIONS:
                raise LimitExceeded("max_sections", "darknet cfg has too many sections")
        elif "=" in line and sections:
            key, _, value = line.partition("=")
            sections[-1].options[key.strip().lower()] = value.strip()
        else:
            raise ParseError(f"darknet cfg line {number}: {line[:60]!r} is not an option")
    return sections


@dataclass
class Shape:
    h: int
    w: int
    c: int


@dataclass
class CfgCount:
    """Floats the network reads, or the reason it cannot be computed."""

    floats: int | None
    reason: str = ""
    unknown: list[str] = field(default_factory=list)


def weight_count(sections: list[Section]) -> CfgCount:
    """How many float32 values darknet reads for this network (None if not modelled)."""
    if not sections or sections[0].name not in _NET:
        return CfgCount(None, "the cfg does not start with [net]")
    net = sections[0]
    shapes: list[Shape] = []
    cur = Shape(net.int("height", 0), net.int("width", 0), net.int("channels", 0))
    total = 0
    unknown = [s.name for s in sections[1:] if s.name not in KNOWN_SECTIONS]
    if unknown:
        return CfgCount(None, f"unknown section [{unknown[0]}]", unknown)
    for index, sec in enumerate(sections[1:]):
        if sec.name in _UNMODELLED:
            return CfgCount(None, f"[{sec.name}] layers are not modelled")
        floats, cur = _layer(sec, cur, shapes, index)
        if sec.int("dontload", 0) == 0:
            total += floats
        shapes.append(cur)
    return CfgCount(total)


def _layer(sec: Section, cur: Shape, shapes: list[Shape], index: int) -> tuple[int, Shape]:
    name = sec.name
    if name in ("convolutional", "conv", "deconvolutional", "deconv"):
        return _conv(sec, cur, deconv=name.startswith("deconv"))
    if name in ("connected", "conn"):
        outputs = sec.int("output", 1)
        bn = 3 * outputs if sec.int("batch_normalize", 0) else 0
        return outputs + outputs * cur.h * cur.w * cur.c + bn, Shape(1, 1, outputs)
    if name == "batchnorm":
        return 3 * cur.c, cur
    return 0, _shape_only(sec, cur, shapes, index)


def _conv(sec: Section, cur: Shape, deconv: bool) -> tuple[int, Shape]:
    n, size = sec.int("filters", 1), sec.int("size", 1)
    stride = max(sec.int("stride", 1), 1)
    groups = max(sec.int("groups", 1), 1)
    padding = size // 2 if sec.int("pad", 0) else sec.int("padding", 0)
    floats = n + (3 * n if sec.int("batch_normalize", 0) else 0) + \
        (cur.c // groups) * n * size * size
    if sec.int("share_index", -1) >= 0:
        floats = 0
    if deconv:
        out = Shape((cur.h - 1) * stride + size - 2 * padding,
                    (cur.w - 1) * stride + size - 2 * padding, n)
    else:
        out = Shape((cur.h + 2 * padding - size) // stride + 1,
                    (cur.w + 2 * padding - size) // stride + 1, n)
    return floats, out


def _shape_only(sec: Section, cur: Shape, shapes: list[Shape], index: int) -> Shape:
    name = sec.name
    if name in ("maxpool", "max", "local_avgpool"):
        size = sec.int("size", 1)
        stride = max(sec.int("stride", 1), 1)
        padding = sec.int("padding", size - 1)
        return Shape((cur.h + padding - size) // stride + 1,
                     (cur.w + padding - size) // stride + 1, cur.c)
    if name in ("avgpool", "avg"):
        return Shape(1, 1, cur.c)
    if name == "route":
        return _route(sec, shapes, index)
    if name == "upsample":
        s = sec.int("stride", 2)
        if s == 0:
            raise ParseError(f"[upsample] line {sec.line}: stride 0")
        return Shape(cur.h * s, cur.w * s, cur.c) if s > 0 else \
            Shape(cur.h // -s, cur.w // -s, cur.c)
    if name in ("reorg", "reorg3d"):
        s = max(sec.int("stride", 1), 1)
        if sec.int("reverse", 0):
            return Shape(cur.h * s, cur.w * s, cur.c // (s * s))
        return Shape(cur.h // s, cur.w // s, cur.c * s * s)
    if name == "shortcut" and sec.options.get("weights_type", "none") != "none":
        raise ParseError("weighted shortcut layers are not modelled")
    return cur


def _route(sec: Section, shapes: list[Shape], index: int) -> Shape:
    refs = [r.strip() for r in sec.options.get("layers", "").split(",") if r.strip()]
    if not refs:
        raise ParseError(f"[route] line {sec.line} names no layers")
    picked: list[Shape] = []
    for ref in refs:
        try:
            i = int(ref)
        except ValueError:
            raise ParseError(f"[route] line {sec.line}: bad layer {ref!r}") from None
        i = index + i if i < 0 else i
        if not 0 <= i < len(shapes):
            raise ParseError(f"[route] line {sec.line}: layer {ref} does not exist")
        picked.append(shapes[i])
    groups = max(sec.int("groups", 1), 1)
    return Shape(picked[0].h, picked[0].w, sum(s.c for s in picked) // groups)


#: Keys whose values darknet multiplies into allocation sizes, and a sane ceiling.
SIZE_KEYS = {"width": 1 << 15, "height": 1 << 15, "channels": 1 << 14, "batch": 1 << 16,
             "filters": 1 << 16, "size": 1 << 10, "output": 1 << 24, "subdivisions": 1 << 16,
             "stride": 1 << 10, "groups": 1 << 16, "classes": 1 << 20, "num": 1 << 16}


def implausible_options(sections: list[Section]) -> list[tuple[Section, str, str]]:
    """Options whose values would make darknet allocate absurd buffers."""
    bad: list[tuple[Section, str, str]] = []
    for sec in sections:
        for key, ceiling in SIZE_KEYS.items():
            raw = sec.options.get(key)
            if raw is None:
                continue
            for part in raw.split(","):
                try:
                    value = int(float(part.strip()))
                except (ValueError, OverflowError):
                    bad.append((sec, key, raw))
                    break
                if value > ceiling or (value < 0 and key not in ("stride",)):
                    bad.append((sec, key, raw))
                    break
    net = next((s for s in sections if s.name in _NET), None)
    if net is not None and not bad:
        try:
            pixels = net.int("width", 0) * net.int("height", 0) * net.int("channels", 0) * \
                max(net.int("batch", 1), 1)
        except ParseError:
            pixels = 0
        if pixels > 1 << 31:
            bad.append((net, "width*height*channels*batch", str(pixels)))
    return bad
