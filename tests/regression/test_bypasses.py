"""One named test per bypass technique of anchors.md part (c) that applies to pickle and its
wrappers. Every sample is built by code (``samples.py``) and scanned by ``hex scan`` in a
subprocess; each test checks that hex reports it at the technique's severity (most CRITICAL)
and names the dangerous global the payload reaches.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

from regression.samples import Catalogue, Sample, build_catalogue

RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFO": 0}


class Scanned:
    """The catalogue and hex's JSON report of it, indexed by sample file."""

    def __init__(self, catalogue: Catalogue, report: dict[str, Any]) -> None:
        self.catalogue = catalogue
        self.report = report
        self.by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for finding in report["results"]:
            rel = os.path.relpath(os.path.realpath(finding["file_path"]),
                                  os.path.realpath(catalogue.root))
            self.by_file[rel.replace(os.sep, "/")].append(finding)

    def problems(self, sample: Sample) -> list[str]:
        """Why hex's report does not catch ``sample`` (empty when it does)."""
        strong = [f for f in self.by_file[sample.rel]
                  if RANK[f["severity"]] >= RANK[sample.min_severity]]
        if not strong:
            seen = [(f["severity"], f["description"][:100]) for f in self.by_file[sample.rel]]
            return [f"{sample.rel}: nothing >= {sample.min_severity}; saw {seen}"]
        text = " ".join(f"{f['evidence'].get('global', '')} {f['description']}" for f in strong)
        return [f"{sample.rel}: no finding names {name}" for name in sample.must_name
                if name not in text]


@pytest.fixture(scope="session")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    root = tmp_path_factory.mktemp("bypasses")
    catalogue = build_catalogue(root)
    run = run_hex("scan", str(root), "--json", "--workers", "2", cwd=root)
    assert run.code == 1, run.stderr
    return Scanned(catalogue, run.json())


def caught(scanned: Scanned, technique: str) -> None:
    samples = scanned.catalogue.of(technique)
    assert samples, f"no sample built for {technique}"
    problems = [p for sample in samples for p in scanned.problems(sample)]
    assert not problems, "\n".join(problems)


def test_scan_of_the_catalogue_has_no_crash(scanned: Scanned) -> None:
    """C4 (fail-open pipelines): no hostile sample makes hex or a scanner crash."""
    bad = [e for e in scanned.report["errors"] if e["kind"] in ("crash", "scanner-error",
                                                                 "timeout")]
    assert not bad


# ---------------------------------------------------------------------------- A: denylist gaps


def test_a1_package_install(scanned: Scanned) -> None:
    """A1: pip.main / pip._internal as RCE (CVE-2025-1716)."""
    caught(scanned, "a1_package_install")


def test_a2_torch_internal_exec_gadgets(scanned: Scanned) -> None:
    """A2: torch-internal exec/eval gadgets (collect_env.run, GuardBuilder.get, ShapeEnv,
    execWrapper, ConfigModule.load_config, datapipe decoder, compile_file, bottleneck,
    torch.serialization.load; picklescan GHSA-4r9r-ch6f-vxmx and siblings, modelscan t27)."""
    caught(scanned, "a2_torch_internal_gadgets")


def test_a3_stdlib_run_string_helpers(scanned: Scanned) -> None:
    """A3: stdlib "run this string" helpers (cProfile, profile, trace, timeit, code, doctest,
    idlelib, lib2to3, ensurepip, numpy.testing runstring, f2py, pydoc.pipepager, runpy;
    picklescan 2025 GHSA series, fickling GHSA-q5qq-mvfm-j35x)."""
    caught(scanned, "a3_stdlib_run_string")


def test_a4_stdlib_hidden_subprocess(scanned: Scanned) -> None:
    """A4: stdlib with a hidden subprocess/os.system (uuid, _osx_support, _aix_support,
    imaplib.IMAP4_stream, _pyrepl pager, asyncio transport, multiprocessing spawnv_passfds,
    _posixsubprocess, pty, platform, pipes, imp, site, atexit; CVE-2026-56315 class)."""
    caught(scanned, "a4_hidden_subprocess")


def test_a5_functions_built_from_code_objects(scanned: Scanned) -> None:
    """A5: FunctionType(marshal.loads(...)), cloudpickle and dill function payloads
    (jasonmiao0511-hue PoCs, picklescan GHSA-9m3x-qqw2-h32h, fickling GHSA-565g-hwwr-4pp3)."""
    caught(scanned, "a5_code_objects")


def test_a6_dynamic_resolution_trampolines(scanned: Scanned) -> None:
    """A6: pkgutil.resolve_name, pydoc.locate, importlib, operator.methodcaller/attrgetter,
    getattr + str.join, functools.partial, gc, inspect, _frozen_importlib, _imp
    (promptfoo "universal bypass", picklescan GHSA-vvpj-8cmc-gx39, modelscan t09/t10)."""
    caught(scanned, "a6_dynamic_resolution")


def test_a7_read_write_exfiltrate(scanned: Scanned) -> None:
    """A7: file and network gadgets instead of exec (_io.FileIO, io.open, logging.FileHandler,
    distutils, linecache, urlopen, ssl, smtplib, webbrowser, pandas read_csv(url) exfil,
    pathlib.Path.write_text; picklescan GHSA-9726-w42j-3qjr, modelscan #338)."""
    caught(scanned, "a7_read_write_exfiltrate")


def test_a8_third_party_gadgets(scanned: Scanned) -> None:
    """A8: third-party gadgets (mlflow _run_entry_point, IPython system, ctypes.CDLL, venv,
    keras get_file; modelscan #338, fickling GHSA-4675-36f9-wf6r)."""
    caught(scanned, "a8_third_party_gadgets")


def test_a9_second_stage_deserialisers(scanned: Scanned) -> None:
    """A9: nested loaders (pickle.loads, _pickle.loads, torch.storage._load_from_bytes whose
    bytes are analysed, torch.load, numpy.load(allow_pickle), joblib.load; modelscan #267)."""
    caught(scanned, "a9_second_stage_loaders")


# ---------------------------------------------------------------------------- B: VM modelling


def test_b1_memoize_index_confusion(scanned: Scanned) -> None:
    """B1: MEMOIZE stores at len(memo), not at a running count (picklescan #23)."""
    caught(scanned, "b1_memo_index_confusion")


def test_b2_build_overwrites_allowlisted_function(scanned: Scanned) -> None:
    """B2/E2: BUILD sets numpy.prod.a='os', .b='system'; GLOBAL numpy prod.a reads them back
    for STACK_GLOBAL (modelscan #85, open since 2024)."""
    caught(scanned, "b2_build_overwrites_allowlisted")


def test_b3_stack_global_at_stream_start(scanned: Scanned) -> None:
    """B3: PROTO-less stream, STACK_GLOBAL operands STRING/BINSTRING at ops 0/1
    (picklescan GHSA-9gvj-pp9x-gcfr, modelscan t40)."""
    caught(scanned, "b3_stack_global_at_start")


def test_b4_missing_memo_key(scanned: Scanned) -> None:
    """B4: BINGET of a never-stored memo index (picklescan #52): reported, never silent."""
    caught(scanned, "b4_missing_memo_key")


def test_b5_dotted_name_through_innocent_module(scanned: Scanned) -> None:
    """B5: STACK_GLOBAL 'pathlib' 'os.system', GLOBAL torch serialization.os.system
    (fickling GHSA-5j3x-jp52-966f, modelscan t25)."""
    caught(scanned, "b5_dotted_name")


def test_b6_submodule_of_denylisted_package(scanned: Scanned) -> None:
    """B6: asyncio.unix_events._UnixSubprocessTransport._start (JFrog CVE-2025-10157)."""
    caught(scanned, "b6_submodule_of_denylisted")


def test_b7_call_result_discarded(scanned: Scanned) -> None:
    """B7: REDUCE/OBJ followed by POP, the call vanishes from an AST (fickling
    GHSA-mxhj-88fx-4pcv)."""
    caught(scanned, "b7_call_result_discarded")


def test_b8_unmodelled_opcodes(scanned: Scanned) -> None:
    """B8: BINUNICODE8 operands, NEWOBJ_EX, EXT1/EXT4 (modelaudit e736ebb/f0c7246/ffb5ec1)."""
    caught(scanned, "b8_unmodelled_opcodes")


def test_b9_frame_boundary_divergence(scanned: Scanned) -> None:
    """B9: a BINBYTES longer than its FRAME hides GLOBAL/REDUCE after the frame end
    (python/cpython#154848, fickling test_frame_boundary_divergence)."""
    caught(scanned, "b9_frame_boundary")


def test_b10_allowlist_matching_flaws(scanned: Scanned) -> None:
    """B10: prefix-matched allowlists (sklearn.ensemble._anything.execute passed modelaudit
    #518): construct-only allowances do not cover calls."""
    caught(scanned, "b10_allowlist_matching")


def test_b11_ml_context_does_not_launder_severity(scanned: Scanned) -> None:
    """B11: dozens of torch decoy imports do not downgrade os.system (modelaudit #388)."""
    caught(scanned, "b11_ml_context_laundering")


def test_b12_private_stdlib_modules(scanned: Scanned) -> None:
    """B12: _interpreters/_xxsubinterpreters.run_string, _operator, _posixsubprocess
    (fickling GHSA-6ggj-6f2q-f7mx)."""
    caught(scanned, "b12_private_stdlib")


# ---------------------------------------------------------------------------- C: malformed


def test_c1_broken_pickle_after_payload(scanned: Scanned) -> None:
    """C1: nullifAI "broken pickle": REDUCE, then invalid bytes and no STOP (ReversingLabs)."""
    caught(scanned, "c1_broken_pickle")


def test_c2_error_does_not_outrank_the_finding(scanned: Scanned) -> None:
    """C2: a broken stream with a payload exits 1 (findings), not 2/3 (picklescan cli.py)."""
    caught(scanned, "c2_error_outranked_by_finding")
    sample = scanned.catalogue.of("c2_error_outranked_by_finding")[0]
    run = run_hex("scan", str(scanned.catalogue.root / sample.rel), "--json", "--workers", "0",
                  cwd=scanned.catalogue.root)
    assert run.code == 1
    assert run.json()["summary"]["critical"] >= 1


def test_c3_protocol_mismatch_is_followed(scanned: Scanned) -> None:
    """C3: protocol-4/5 opcodes under a PROTO 2 header or none at all: CPython runs them."""
    caught(scanned, "c3_protocol_mismatch")


def test_c4_crash_and_hang_bait(scanned: Scanned) -> None:
    """C4: 50,000 nested MARKs, a 2^62-byte length, 200,000 nested tuples after the payload
    (picklescan #18, fickling #196/#213)."""
    caught(scanned, "c4_crash_bait")


def test_c5_computed_legacy_magic(scanned: Scanned) -> None:
    """C5: legacy torch file whose magic number is computed by a call (GHSA-97f8-7cmv-76j2)."""
    caught(scanned, "c5_computed_legacy_magic")


# ---------------------------------------------------------------------------- D: containers


def test_d1_7z_wrapped_torch(scanned: Scanned) -> None:
    """D1: PyTorch members, or a whole .pt, inside a 7z archive (nullifAI)."""
    caught(scanned, "d1_7z_wrapped_torch")


def test_d2_raw_pickle_under_other_names(scanned: Scanned) -> None:
    """D2/G2: raw pickles named .bin/.pt/.txt/.safetensors/.dat/no extension, protocol 0/1
    without magic (CVE-2025-1889, CVE-2025-10155, modelscan t02/t03)."""
    caught(scanned, "d2_disguised_raw_pickle")


def test_d3_zip_header_manipulation(scanned: Scanned) -> None:
    """D3: local/central name mismatch (CVE-2025-1944), flag bits 0x1/0x20/0x40
    (CVE-2025-1945, GHSA-w8jq-xcqf-f792, GHSA-7q5r-7gvp-wc82)."""
    caught(scanned, "d3_zip_header_tricks")


def test_d4_bad_crc(scanned: Scanned) -> None:
    """D4: wrong CRC on data.pkl, stored and deflated (JFrog CVE-2025-10156, modelaudit t16)."""
    caught(scanned, "d4_bad_crc")


def test_d5_duplicate_member_names(scanned: Scanned) -> None:
    """D5: two archive/data.pkl entries, the malicious one first or last (t23/t24)."""
    caught(scanned, "d5_duplicate_names")


def test_d6_nested_archives(scanned: Scanned) -> None:
    """D6: zip in zip, torch zip in tar.gz, gzip pickle in zip (modelscan NestedZipError)."""
    caught(scanned, "d6_nested_archives")


def test_d7_compressed_joblib(scanned: Scanned) -> None:
    """D7: joblib.dump with zlib, gzip, bz2, lzma, xz and lz4, plus .pkl.gz/.bz2/.xz/.z
    (picklescan 1.0.5 --strict misses t36-t39)."""
    caught(scanned, "d7_compressed_joblib")


def test_d8_pickle_zip_polyglot(scanned: Scanned) -> None:
    """D8: pickle head + zip tail: both readings are scanned (t28, fickling polyglot.py)."""
    caught(scanned, "d8_pickle_zip_polyglot")


def test_d9_legacy_stacked_pickles(scanned: Scanned) -> None:
    """D9: legacy torch.save layout with the payload in the fifth pickle (modelscan t04)."""
    caught(scanned, "d9_legacy_stacked_payload")


def test_d10_numpy_object_arrays(scanned: Scanned) -> None:
    """D10/F6: object-dtype .npy (v1 and v2 headers, structured dtype), .npz
    (CVE-2019-6446, jasonmiao0511-hue/modelscan-npz-bypass-poc)."""
    caught(scanned, "d10_numpy_object_arrays")


def test_d11_protocol0_in_extensionless_member(scanned: Scanned) -> None:
    """D11: protocol 0/1 pickle in a zip member with no extension (picklescan t15)."""
    caught(scanned, "d11_extensionless_member")


def test_d12_extra_pickles_in_torch_zip(scanned: Scanned) -> None:
    """D12: payload pickles under storage-like names next to data.pkl (modelaudit #1043)."""
    caught(scanned, "d12_extra_pickles_in_torch_zip")


# ---------------------------------------------------------------------------- E, F, G


def test_e1_numpy_size_builtins_gadget(scanned: Scanned) -> None:
    """E1: numpy.size.shape = numpy.__builtins__, numpy.size(numpy.size, 'eval')
    (modelscan #330)."""
    caught(scanned, "e1_numpy_size_builtins")


def test_e2_build_on_allowlisted_class(scanned: Scanned) -> None:
    """E2: BUILD plants posix.system as collections.OrderedDict.fromkeys, read back by GLOBAL."""
    caught(scanned, "e2_build_on_allowlisted_class")


def test_e3_allowlisted_rebuild_functions_as_trampolines(scanned: Scanned) -> None:
    """E3: allowlisted rebuild helpers that call an argument (_rebuild_from_type_v2,
    __randomstate_ctor, copyreg._reconstructor of a non-value base, _rebuild_tensor_v2 hooks;
    CVE-2025-32434 / CVE-2026-24747 class)."""
    caught(scanned, "e3_allowlisted_trampolines")


def test_f6_torchscript_python_escape_hatches(scanned: Scanned) -> None:
    """F6: TorchScript code/ sources edited to reach Python (__import__, prim::PythonOp, eval;
    CVE-2022-45907 class)."""
    caught(scanned, "f6_torchscript_python_escape")


def test_g1_unknown_gadget_is_not_clean(scanned: Scanned) -> None:
    """G1: an unknown callable is a HIGH finding, not "suspicious" with exit 0 (picklescan #66)."""
    caught(scanned, "g1_unknown_gadget_is_not_clean")


def test_g4_scanner_deactivation(scanned: Scanned) -> None:
    """G4: a payload that imports a scanner to disable it (fickling ScannerDeactivation)."""
    caught(scanned, "g4_scanner_deactivation")


def test_every_technique_has_a_named_test(scanned: Scanned) -> None:
    """The catalogue and this module stay in step: no sample family is left unchecked."""
    source = Path(__file__).read_text(encoding="utf-8")
    techniques = {s.technique for s in scanned.catalogue.samples}
    unchecked = sorted(t for t in techniques if f'"{t}"' not in source)
    assert not unchecked
