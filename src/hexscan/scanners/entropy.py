"""The ``entropy`` scanner: payloads hidden in or beside model content (HEX-PAY).

* executables embedded in model bytes, or shipped as members of model containers;
* data after a format's logical end (NPY, PNG, zip-based formats; safetensors and GGUF
  trailing data is reported by their own scanners);
* long encoded or random blobs in JSON configs and safetensors metadata;
* payloads in the low bits of float and int8 weights (safetensors, torch storages, NPY,
  ONNX initializers), also compressed or XOR-ed.

``--skip entropy`` turns the whole family off. Every read is bounded (policy/payloads.toml).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from hexscan.discover import members
from hexscan.discover.artifact import Artifact
from hexscan.errors import LimitExceeded, ParseError
from hexscan.formats.kinds import ZIP_BASED, Format
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers import lsb, sniff
from hexscan.parsers.numpy import parse_npy_header
from hexscan.parsers.onnx import OnnxTensor, iter_onnx
from hexscan.policy import lists
from hexscan.rules import payload as rules
from hexscan.rules._rule import Rule
from hexscan.scanners import _blobs
from hexscan.scanners.base import ScanContext

#: Model formats whose bytes are searched for embedded executables.
_DATA_FORMATS = frozenset({
    Format.SAFETENSORS, Format.GGUF, Format.GGML, Format.TFLITE, Format.ONNX, Format.COREML,
    Format.CAFFE_MODEL, Format.DARKNET_WEIGHTS, Format.TENSOR_DATA, Format.NUMPY,
    Format.KERAS_H5, Format.HDF5, Format.TF_CHECKPOINT_DATA, Format.TF_SAVEDMODEL,
    Format.TF_GRAPHDEF, Format.PICKLE, Format.JOBLIB, Format.PYTORCH_LEGACY,
    Format.SENTENCEPIECE, Format.PROTOBUF,
})
#: Containers that hold model data only: code inside them is never expected.
_MODEL_CONTAINERS = frozenset({Format.PYTORCH_ZIP, Format.TORCHSCRIPT, Format.NUMPY_NPZ,
                               Format.KERAS_V3})
_CODE_FORMATS = frozenset({Format.EXECUTABLE, Format.SHELL_SCRIPT, Format.PYTHON_SOURCE})
_CHUNK = 1024 * 1024
_OVERLAP = 4096
_PNG = b"\x89PNG\r\n\x1a\n"


class EntropyScanner:
    name: ClassVar[str] = "entropy"
    version: ClassVar[int] = 1
    formats: ClassVar[frozenset[Format] | None] = None
    rules: ClassVar[tuple[Rule, ...]] = (rules.EMBEDDED_EXECUTABLE, rules.TRAILING_DATA,
                                         rules.HIGH_ENTROPY_BLOB, rules.LSB_PAYLOAD)

    def scan(self, artifact: Artifact, ctx: ScanContext) -> Iterator[Finding]:
        fmt = ctx.format
        budget = ctx.file_state.setdefault(self.name, _FileBudget.from_policy())
        if fmt in _CODE_FORMATS:
            yield from _code_member(artifact, fmt)
        if fmt in _DATA_FORMATS:
            yield from _embedded(artifact, budget)
        yield from _trailing(artifact, fmt)
        yield from _blobs.blob_findings(artifact, fmt)
        yield from _lsb_findings(artifact, fmt, budget)


@dataclass
class _FileBudget:
    """What is left to sample in one top-level file, all its members together: it keeps a
    checkpoint of many tensor storages from costing a full read."""

    scan_bytes: int
    tensors: int

    @classmethod
    def from_policy(cls) -> _FileBudget:
        policy = lists.load("payloads")
        return cls(int(policy["executables"]["max_scan_bytes_per_file"]),
                   int(policy["lsb"]["max_tensors"]))


# --- executables ---------------------------------------------------------------------------

def _code_member(art: Artifact, fmt: Format) -> Iterator[Finding]:
    parent = art.parent_format
    what = {Format.EXECUTABLE: "native executable", Format.SHELL_SCRIPT: "shell script",
            Format.PYTHON_SOURCE: "Python source"}[fmt]
    if art.member is None:
        if fmt is Format.EXECUTABLE:
            yield Finding(rules.EMBEDDED_EXECUTABLE, f"{art.basename} is a {what} among the "
                          "model files", key="file", severity=Severity.LOW,
                          evidence={"kind": what})
        return
    if parent is Format.TORCHSCRIPT and fmt is Format.PYTHON_SOURCE and \
            "/code/" in f"/{art.name}":
        return  # TorchScript's own serialised code (judged by the TorchScript scanner)
    if fmt is Format.EXECUTABLE:
        severity = Severity.HIGH
    elif parent in _MODEL_CONTAINERS or fmt is Format.SHELL_SCRIPT:
        severity = Severity.MEDIUM
    else:
        severity = Severity.LOW
    yield Finding(rules.EMBEDDED_EXECUTABLE, f"container member {art.name} is a {what}",
                  key=f"member:{art.name}", severity=severity,
                  evidence={"kind": what, "container": parent.value if parent else None})


def _embedded(art: Artifact, file_budget: _FileBudget) -> Iterator[Finding]:
    policy = lists.load("payloads")["executables"]
    budget = min(int(policy["max_scan_bytes"]), file_budget.scan_bytes)
    reports = int(policy["max_reports"])
    found = 0
    with art.open() as stream:
        offset, carry = 0, b""
        while offset < budget and found < reports:
            chunk = stream.read(min(_CHUNK, budget - offset))
            if not chunk:
                break
            file_budget.scan_bytes -= len(chunk)
            data = carry + chunk
            base = offset - len(carry)
            end = max(len(data) - _OVERLAP, 1) if len(chunk) == _CHUNK else len(data)
            for start in sniff.candidate_starts(data, end):
                kind = sniff.executable_at(data, start)
                if kind is None or base + start == 0:
                    continue
                found += 1
                yield _embedded_finding(art, kind, base + start)
                if found >= reports:
                    break
            offset += len(chunk)
            scanned = len(data) - _OVERLAP if len(chunk) == _CHUNK else len(data)
            carry = data[max(scanned, 0):]


def _embedded_finding(art: Artifact, kind: str, offset: int) -> Finding:
    script = kind == "script"
    return Finding(rules.EMBEDDED_EXECUTABLE,
                   f"{art.basename}: {'a script' if script else f'an {kind} executable'} is "
                   f"embedded at byte {offset}", key=f"{kind}@{offset}", offset=offset,
                   severity=Severity.MEDIUM if script else None,
                   evidence={"kind": kind, "offset": offset})


# --- trailing data -------------------------------------------------------------------------

def _trailing(art: Artifact, fmt: Format) -> Iterator[Finding]:
    if art.size is None:
        return
    end = _logical_end(art, fmt)
    if end is None or end >= art.size:
        return
    with art.open() as stream:
        stream.seek(end)
        sample = stream.read(4096)
    if len(sample) == art.size - end and not sample.strip(b"\x00") and len(sample) < 4096:
        return  # alignment padding
    what = sniff.describe(sample)
    code = sniff.runs_code(sniff.code_kind(sample))
    yield Finding(rules.TRAILING_DATA, f"{art.size - end} bytes follow the end of the "
                  f"{fmt.value if fmt is not Format.UNKNOWN else 'PNG'} data at byte {end}: "
                  f"{what}", key="trailing", offset=end,
                  severity=Severity.HIGH if code else None,
                  evidence={"offset": end, "length": art.size - end, "looks_like": what,
                            "head_hex": sample[:32].hex()})


def _logical_end(art: Artifact, fmt: Format) -> int | None:
    try:
        if fmt is Format.NUMPY:
            return _npy_end(art)
        if fmt in ZIP_BASED:
            got = members.read_tail(art, members.EOCD_SEARCH)
            record = members.find_end_record(*got) if got else None
            return record.end if record else None
        if fmt is Format.UNKNOWN and art.head().startswith(_PNG):
            return _png_end(art)
    except (ParseError, ValueError, struct.error):
        return None
    return None


def _npy_end(art: Artifact) -> int | None:
    header = parse_npy_header(art.head())
    if header.holds_objects:
        return None
    itemsize = _itemsize(header.descr)
    if itemsize is None:
        return None
    count = 1
    for dim in header.shape:
        count *= dim
    return header.data_offset + count * itemsize


def _itemsize(descr: str) -> int | None:
    code = descr.lstrip("<>|=")
    if len(code) >= 2 and code[0] in "biufcSUV" and code[1:].isdigit():
        size = int(code[1:])
        return size * 4 if code[0] == "U" else size
    if code in ("b1", "?"):
        return 1
    return None


def _png_end(art: Artifact) -> int | None:
    pos = 8
    with art.open() as stream:
        for _ in range(100_000):
            stream.seek(pos)
            head = stream.read(8)
            if len(head) < 8:
                return None
            length = int(struct.unpack(">I", head[:4])[0])
            pos += 12 + length
            if head[4:8] == b"IEND":
                return pos
    return None


# --- LSB payloads --------------------------------------------------------------------------

def _lsb_findings(art: Artifact, fmt: Format, file_budget: _FileBudget
                  ) -> Iterator[Finding]:
    """Test the largest float tensors; the count is shared by a whole top-level file (a
    checkpoint stores each tensor as its own member)."""
    if fmt not in (Format.SAFETENSORS, Format.TENSOR_DATA, Format.NUMPY, Format.ONNX) or \
            file_budget.tensors <= 0:
        return
    np = lsb.numpy_or_none()
    if np is None:
        return
    policy = lists.load("payloads")["lsb"]
    try:
        tensors = _float_tensors(art, fmt, np, int(policy["min_elements"]))
    except (ParseError, ValueError, struct.error, LimitExceeded):
        return
    tensors.sort(key=lambda t: -t[3] * lsb.DTYPES[t[1]][0])
    for name, dtype, start, count in tensors[:file_budget.tensors]:
        file_budget.tensors -= 1
        verdict = _test_tensor(art, dtype, start, count, np, policy)
        if verdict is not None:
            yield Finding(rules.LSB_PAYLOAD, f"tensor {name!r} ({dtype}): {verdict.detail}",
                          key=f"{name}:{verdict.kind}", offset=start,
                          confidence=0.95 if verdict.kind == "header" else 0.8,
                          evidence={"tensor": name, "dtype": dtype, "test": verdict.kind,
                                    "low_bits": verdict.bits, "detail": verdict.detail,
                                    "z_low": round(verdict.z_low, 1),
                                    "z_ref": round(verdict.z_ref, 1),
                                    "window_element": verdict.element})
            return


def _float_tensors(art: Artifact, fmt: Format, np: Any, minimum: int
                   ) -> list[tuple[str, str, int, int]]:
    """(name, dtype, byte offset, element count) of the float tensors worth testing."""
    if fmt is Format.SAFETENSORS:
        return [t for t in _safetensors_tensors(art) if t[3] >= minimum]
    if fmt is Format.ONNX:
        return [t for t in _onnx_tensors(art) if t[3] >= minimum]
    if fmt is Format.NUMPY:
        header = parse_npy_header(art.head())
        dtype = {"<f4": "F32", "<f2": "F16"}.get(header.descr)
        count = 1
        for dim in header.shape:
            count *= dim
        return [(art.basename, dtype, header.data_offset, count)] if dtype and \
            count >= minimum else []
    size = art.size or 0
    sample = art.head()[:65536]
    for dtype in ("F32", "F16"):
        width = lsb.DTYPES[dtype][0]
        if size % width == 0 and size // width >= minimum and \
                lsb.plausible_floats(sample, dtype, np) >= 0.98:
            return [(art.name, dtype, 0, size // width)]
    return []


#: ONNX TensorProto data types -> the dtypes the LSB test reads.
_ONNX_DTYPES = {1: "F32", 10: "F16", 16: "BF16", 3: "I8", 2: "U8"}


def _onnx_tensors(art: Artifact) -> list[tuple[str, str, int, int]]:
    """Initializers whose raw_data sits in the model file (external data is its own file)."""
    out: list[tuple[str, str, int, int]] = []
    with art.open() as stream:
        for rec in iter_onnx(stream, art.size):
            if isinstance(rec, OnnxTensor) and rec.raw_start is not None and \
                    rec.raw_length and rec.data_type in _ONNX_DTYPES:
                dtype = _ONNX_DTYPES[rec.data_type]
                out.append((rec.name, dtype, rec.raw_start,
                            rec.raw_length // lsb.DTYPES[dtype][0]))
    return out


def _safetensors_tensors(art: Artifact) -> list[tuple[str, str, int, int]]:
    head = art.head()
    (n,) = struct.unpack_from("<Q", head)
    if n > 100 * 1024 * 1024:
        return []
    raw = head[8:8 + n]
    if len(raw) < n:
        with art.open() as stream:
            stream.seek(8)
            raw = stream.read(n)
    header = json.loads(raw)
    out: list[tuple[str, str, int, int]] = []
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        dtype = info.get("dtype")
        offsets = info.get("data_offsets")
        if dtype in lsb.DTYPES and isinstance(offsets, list) and len(offsets) == 2 and \
                all(isinstance(o, int) for o in offsets):
            width = lsb.DTYPES[dtype][0]
            out.append((str(name), dtype, 8 + n + offsets[0], (offsets[1] - offsets[0]) // width))
    return out


def _test_tensor(art: Artifact, dtype: str, start: int, count: int, np: Any,
                 policy: dict[str, Any]) -> lsb.LsbVerdict | None:
    width = lsb.DTYPES[dtype][0]
    window, windows = int(policy["window"]), int(policy["windows"])
    firsts = sorted({0, *(int(count * i / windows) for i in range(1, windows))})
    with art.open() as stream:
        for first in firsts:
            n = min(window, count - first)
            if n < 4096:
                continue
            stream.seek(start + first * width)
            raw = lsb.as_uints(stream.read(n * width), dtype, np)
            if first == 0:
                verdict = lsb.header_verdict(raw, dtype, np)
                if verdict is not None:
                    return verdict
            if dtype not in lsb.FLOATS:
                continue
            verdict = lsb.plane_verdict(raw, dtype, np, float(policy["z_structured"]),
                                        float(policy["z_random"]),
                                        float(policy["constant_cover_share"]), first)
            if verdict is not None:
                return verdict
    return None
