"""Caffe: Python layers (new and V1 style) and file-writing layers, in binary NetParameter
messages (caffe.proto field numbers) and prototxt text; readers are bounded under fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.formats import CAFFE_PROTOTXT
from fixtures.models import caffe_classes, fuzz, ids, scan_bytes, scan_path

from hexscan.errors import ParseError
from hexscan.formats.kinds import Format
from hexscan.model.severity import Severity
from hexscan.scanners.caffe import CaffeScanner

CF = caffe_classes()


def net(python: tuple[str, str, str] | None = None, hdf5: str | None = None,
        v1_python: bool = False) -> bytes:
    msg = CF["NetParameter"](name="TinyNet")
    msg.layer.add(name="data", type="Input", top=["data"])
    ip = msg.layer.add(name="ip", type="InnerProduct", bottom=["data"], top=["ip"])
    ip.blobs.add(data=[0.5, 0.25, -1.0, 2.0])
    if python:
        layer = msg.layer.add(name="py", type="Python", bottom=["ip"], top=["out"])
        layer.python_param.module, layer.python_param.layer, layer.python_param.param_str = python
    if hdf5 is not None:
        msg.layer.add(name="dump", type="HDF5Output", bottom=["ip"]).hdf5_output_param.file_name \
            = hdf5
    if v1_python:
        old = msg.layers.add(name="legacy", type=39, bottom=["ip"], top=["x"])
        old.python_param.module = "rpn.proposal_layer"
        old.python_param.layer = "ProposalLayer"
    return msg.SerializeToString()


def scan(data: bytes) -> list:
    return scan_bytes(CaffeScanner(), "net.caffemodel", data, fmt=Format.CAFFE_MODEL)


def scan_text(text: str) -> list:
    return scan_bytes(CaffeScanner(), "deploy.prototxt", text.encode(), fmt=Format.CAFFE_PROTOTXT)


def test_benign_net_and_prototxt_are_clean() -> None:
    assert scan(net()) == []
    assert scan_text(CAFFE_PROTOTXT.decode()) == []


def test_python_layer_reports_module_and_class() -> None:
    (finding,) = scan(net(python=("rpn.proposal_layer", "ProposalLayer", "'feat_stride': 16")))
    assert finding.rule.id == "HEX-CAF-001" and finding.effective_severity is Severity.HIGH
    assert finding.evidence["module"] == "rpn.proposal_layer"
    assert finding.evidence["class"] == "ProposalLayer"
    assert "feat_stride" in finding.evidence["param_str"]


def test_python_layer_naming_a_command_module_is_critical() -> None:
    (finding,) = scan(net(python=("os", "system", "echo hex-test")))
    assert finding.rule.id == "HEX-CAF-001" and finding.effective_severity is Severity.CRITICAL


def test_v1_layer_with_python_param() -> None:
    (finding,) = scan(net(v1_python=True))
    assert finding.rule.id == "HEX-CAF-001" and finding.evidence["module"] == "rpn.proposal_layer"


PYTHON_PROTOTXT = CAFFE_PROTOTXT.decode() + """
layer {
  name: 'loss'  # a comment
  type: 'Python'
  bottom: "ip"
  top: "loss"
  python_param {
    module: "subprocess"
    layer: "check_call"
    param_str: "{\\"cmd\\": \\"id\\"}"
  }
  loss_weight: 1
}
"""

V1_PROTOTXT = """name: "Old"
layers {
  name: "roi"
  type: PYTHON
  bottom: "data"
  top: "rois"
  python_param { module: 'roi_data_layer.layer' layer: 'RoIDataLayer' }
}
"""


def test_prototxt_python_layers_new_and_v1() -> None:
    (finding,) = scan_text(PYTHON_PROTOTXT)
    assert finding.evidence["module"] == "subprocess"
    assert finding.effective_severity is Severity.CRITICAL
    assert '"cmd"' in finding.evidence["param_str"]
    (old,) = scan_text(V1_PROTOTXT)
    assert old.rule.id == "HEX-CAF-001" and old.evidence["class"] == "RoIDataLayer"


@pytest.mark.parametrize(("path", "severity"), [("out/features.h5", Severity.MEDIUM),
                                                ("/home/user/.bashrc", Severity.HIGH),
                                                ("../../../x.h5", Severity.HIGH)])
def test_hdf5_output_layer_writes_files(path: str, severity: Severity) -> None:
    (finding,) = scan(net(hdf5=path))
    assert finding.rule.id == "HEX-CAF-002" and finding.effective_severity is severity
    text = CAFFE_PROTOTXT.decode() + ('layer { name: "d" type: "HDF5Output" bottom: "ip" '
                                      f'hdf5_output_param {{ file_name: "{path}" }} }}\n')
    assert ids(scan_text(text)) == ["HEX-CAF-002"]


def test_broken_prototxt_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        scan_text('layer { name: "x" type: "Python"')


def test_pipeline(tmp_path: Path) -> None:
    (tmp_path / "deploy.prototxt").write_text(PYTHON_PROTOTXT)
    (tmp_path / "net.caffemodel").write_bytes(net(python=("mylayers", "Custom", "")))
    assert ids(scan_path(tmp_path / "deploy.prototxt").findings) == ["HEX-CAF-001"]
    found = scan_path(tmp_path / "net.caffemodel").findings
    assert ids(found) == ["HEX-CAF-001"]


def test_fuzzed_inputs_only_raise_parse_or_limit_errors() -> None:
    outcome = fuzz(scan, [net(python=("a", "b", "c"), hdf5="x.h5", v1_python=True), net()],
                   rounds=3000)
    assert outcome["ok"] > 0
    outcome = fuzz(lambda d: scan_text(d.decode("utf-8", "replace")),
                   [PYTHON_PROTOTXT.encode(), V1_PROTOTXT.encode()], rounds=3000)
    assert outcome["ok"] > 0
