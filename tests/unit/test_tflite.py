"""TFLite: operators (CUSTOM, Flex/TF Select) and buffers, on models built with the
``tflite`` schema builders and ``flatbuffers``; the reader is bounded under fuzzing."""

from __future__ import annotations

import importlib
import struct
from pathlib import Path

import pytest

pytest.importorskip("tflite")
pytest.importorskip("flatbuffers")

from fixtures.models import fuzz, ids, scan_bytes, scan_path, tflite_model  # noqa: E402

from hexscan.errors import ParseError  # noqa: E402
from hexscan.model.severity import Severity  # noqa: E402
from hexscan.parsers.flatbuf import BytesSource  # noqa: E402
from hexscan.parsers.tflite import CUSTOM, parse_tflite  # noqa: E402
from hexscan.scanners.tflite import TFLiteScanner  # noqa: E402

ADD, CONV_2D, FULLY_CONNECTED = 0, 3, 9
BENIGN = [(CONV_2D, None), (ADD, None), (FULLY_CONNECTED, None)]


def scan(data: bytes) -> list:
    return scan_bytes(TFLiteScanner(), "model.tflite", data)


def test_reader_agrees_with_the_generated_classes() -> None:
    data = tflite_model(BENIGN + [(CUSTOM, "FlexReadFile"), (CUSTOM, "MyOp")],
                        data=b"\x01\x02\x03\x04")
    model = importlib.import_module("tflite.Model").Model.GetRootAsModel(data, 0)
    view = parse_tflite(BytesSource(data))
    assert [c.custom for c in view.opcodes] == [
        model.OperatorCodes(i).CustomCode().decode() if model.OperatorCodes(i).CustomCode()
        else None for i in range(model.OperatorCodesLength())]
    assert [c.builtin for c in view.opcodes] == [model.OperatorCodes(i).BuiltinCode()
                                                 for i in range(model.OperatorCodesLength())]
    assert all(c.uses == 1 for c in view.opcodes)
    assert view.buffers[1].data_len == 4 and view.description == "hex-tests"


def test_builtin_only_model_is_clean() -> None:
    assert scan(tflite_model(BENIGN, data=struct.pack("<4f", 1, 2, 3, 4))) == []


@pytest.mark.parametrize(("op", "severity", "category"), [
    ("FlexReadFile", Severity.HIGH, "file_read"),
    ("FlexWriteFile", Severity.HIGH, "file_write"),
    ("FlexMatchingFiles", Severity.HIGH, "file_read"),
    ("FlexPrintV2", Severity.HIGH, "file_write"),
    ("FlexPyFunc", Severity.CRITICAL, "code"),
    ("FlexEagerPyFunc", Severity.CRITICAL, "code"),
])
def test_flex_ops_that_touch_files_or_code(op: str, severity: Severity, category: str) -> None:
    (finding,) = scan(tflite_model(BENIGN + [(CUSTOM, op)]))
    assert finding.rule.id == "HEX-TFL-001" and finding.effective_severity is severity
    assert finding.evidence["category"] == category and finding.evidence["uses"] == 1


def test_other_flex_ops_are_listed_low() -> None:
    (finding,) = scan(tflite_model(BENIGN + [(CUSTOM, "FlexAddV2"), (CUSTOM, "FlexErf")]))
    assert finding.rule.id == "HEX-TFL-002" and finding.effective_severity is Severity.LOW
    assert finding.evidence["ops"] == ["AddV2", "Erf"]


def test_unknown_custom_op_is_low_and_known_ones_are_silent() -> None:
    (finding,) = scan(tflite_model(BENIGN + [(CUSTOM, "MyVendorKernel")]))
    assert finding.rule.id == "HEX-TFL-003" and finding.evidence["custom_code"] == "MyVendorKernel"
    assert scan(tflite_model(BENIGN + [(CUSTOM, "TFLite_Detection_PostProcess")])) == []


def test_buffer_offset_past_the_end() -> None:
    data = tflite_model(BENIGN, buffers=[(10_000_000, 4096)])
    (finding,) = scan(data)
    assert finding.rule.id == "HEX-TFL-004" and finding.evidence["offset"] == 10_000_000
    fits = tflite_model(BENIGN, buffers=[(16, 8)])
    assert scan(fits) == []


def test_tensor_buffer_index_out_of_range() -> None:
    (finding,) = scan(tflite_model(BENIGN, tensor_buffer=99))
    assert finding.rule.id == "HEX-TFL-004" and finding.evidence["buffer"] == 99


def test_not_a_flatbuffer_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        scan(b"\x00\x00\x00\x00TFL3" + b"\xff" * 8)


def test_pipeline_reports_dangerous_flex_op(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(tflite_model(BENIGN + [(CUSTOM, "FlexWriteFile")]))
    result = scan_path(path)
    assert ids(result.findings, Severity.MEDIUM) == ["HEX-TFL-001"]
    assert not result.errors


def test_fuzzed_models_only_raise_parse_or_limit_errors() -> None:
    seeds = [tflite_model(BENIGN + [(CUSTOM, "FlexReadFile")], data=b"\x00" * 64,
                          buffers=[(8, 16)]), tflite_model(BENIGN)]
    outcome = fuzz(scan, seeds, rounds=3000)
    assert sum(outcome.values()) == 3000 and outcome["ok"] > 0
