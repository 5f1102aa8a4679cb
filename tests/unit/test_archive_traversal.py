"""Container differentials: zip-slip and tar traversal, escaping links, device/FIFO members,
duplicate names, bombs, and polyglots (zip appended to PNG/pickle, data before a zip).

Archives are written by zipfile/tarfile; nothing is ever extracted."""

from __future__ import annotations

import io
import pickle
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from fixtures.archives import PAYLOAD, tar_bytes, zip_bytes
from fixtures.models import fuzz, ids, png_bytes, scan_path

from hexscan.discover import members
from hexscan.model.report import Status
from hexscan.model.severity import Severity
from hexscan.parsers.paths import escape_kind, link_escapes

#: A protocol-0 pickle that would run ``os.system('echo hex-test')`` if loaded (never loaded).
EVIL = b"cos\nsystem\n(S'echo hex-test'\ntR."


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("name", "kind"), [
    ("../../evil.pkl", "traversal"), ("/etc/cron.d/evil", "absolute"),
    ("C:\\Windows\\evil.dll", "drive"), ("\\\\server\\share\\evil", "unc"),
    ("model\\..\\..\\evil.pkl", "backslash-traversal"), ("a/b/../../../evil", "traversal"),
    ("\\evil.pkl", "absolute"),
])
def test_escape_kinds(name: str, kind: str) -> None:
    assert escape_kind(name) == kind


@pytest.mark.parametrize("name", ["model/data.pkl", "a/../b.pkl", "./x", "..data/x", "a..b"])
def test_names_that_stay_inside(name: str) -> None:
    assert escape_kind(name) is None


def test_zip_slip_names_are_reported_and_still_scanned(tmp_path: Path) -> None:
    names = ["../../evil.pkl", "/abs/evil.pkl", "C:\\evil.pkl", "ok\\..\\..\\evil.pkl",
             "fine/model.pkl"]
    result = scan_path(write(tmp_path, "slip.zip", zip_bytes([(n, PAYLOAD) for n in names])))
    found = {f.member: f for f in result.findings if f.rule.id == "HEX-ARC-005"}
    assert set(found) == set(names[:4])
    assert all(f.effective_severity is Severity.HIGH for f in found.values())
    scanned = {f.member for f in result.files if f.status is Status.SCANNED}
    assert set(names) <= scanned


def test_tar_traversal(tmp_path: Path) -> None:
    data = tar_bytes([("../../etc/profile.d/x.sh", b"echo hi\n"), ("ok/model.pkl", PAYLOAD)])
    result = scan_path(write(tmp_path, "t.tar", data))
    assert [f.member for f in result.findings if f.rule.id == "HEX-ARC-005"] == \
        ["../../etc/profile.d/x.sh"]


def _tar_with(*infos: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("model.pkl")
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
        for extra in infos:
            tf.addfile(extra)
    return buf.getvalue()


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(("link", "escapes"), [
    (_link("evil.pkl", "/etc/passwd"), True),
    (_link("sub/evil.pkl", "../../outside"), True),
    (_link("sub/ok.pkl", "../model.pkl"), False),
    (_link("hard.pkl", "/etc/shadow", hard=True), True),
    (_link("hard2.pkl", "../x", hard=True), True),
    (_link("hard3.pkl", "model.pkl", hard=True), False),
])
def test_tar_links(tmp_path: Path, link: tarfile.TarInfo, escapes: bool) -> None:
    result = scan_path(write(tmp_path, "links.tar", _tar_with(link)))
    found = [f for f in result.findings if f.rule.id == "HEX-ARC-006"]
    assert bool(found) == escapes
    assert {f.member: f.status for f in result.files}[link.name] is Status.SKIPPED


def test_zip_symlink_member_escaping(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.pkl", PAYLOAD)
        for name, target in (("evil.pkl", "/etc/passwd"), ("inner.pkl", "model.pkl")):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    result = scan_path(write(tmp_path, "links.zip", buf.getvalue()))
    (finding,) = [f for f in result.findings if f.rule.id == "HEX-ARC-006"]
    assert finding.member == "evil.pkl" and finding.evidence["target"] == "/etc/passwd"


def test_link_escapes_helper() -> None:
    assert link_escapes("a/b/c", "../../x") is None
    assert link_escapes("a/b/c", "../../../x") == "traversal"
    assert link_escapes("a", "C:\\x") == "drive"


@pytest.mark.parametrize(("kind", "label"), [(tarfile.CHRTYPE, "character device"),
                                             (tarfile.BLKTYPE, "block device"),
                                             (tarfile.FIFOTYPE, "FIFO")])
def test_device_and_fifo_members(tmp_path: Path, kind: bytes, label: str) -> None:
    info = tarfile.TarInfo("dev/special")
    info.type = kind
    result = scan_path(write(tmp_path, "dev.tar", _tar_with(info)))
    (finding,) = [f for f in result.findings if f.rule.id == "HEX-ARC-007"]
    assert finding.evidence["kind"] == label and finding.member == "dev/special"


def test_duplicate_zip_members_are_reported_and_both_scanned(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("archive/data.pkl", PAYLOAD)
        zf.writestr("archive/data.pkl", EVIL)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        assert zf.read("archive/data.pkl") == EVIL  # zipfile's answer: the last copy
    result = scan_path(write(tmp_path, "dup.zip", buf.getvalue()))
    assert [f.member for f in result.findings if f.rule.id == "HEX-ARC-008"] == \
        ["archive/data.pkl"]
    assert [f.member for f in result.files].count("archive/data.pkl") == 2
    assert any(f.rule.id.startswith("HEX-PKL") and f.effective_severity >= Severity.HIGH
               for f in result.findings)


def test_duplicate_tar_members(tmp_path: Path) -> None:
    data = tar_bytes([("model.pkl", PAYLOAD), ("model.pkl", EVIL)])
    result = scan_path(write(tmp_path, "dup.tar", data))
    assert ids(result.findings, Severity.MEDIUM).count("HEX-ARC-008") == 1


def test_bomb_rules_fire(tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    ratio = scan_path(archive_samples["bomb.zip"], max_ratio=50, ratio_min_size=1024)
    assert "HEX-ARC-001" in ids(ratio.findings)
    size = scan_path(archive_samples["big.tar"], max_member_size=100_000)
    assert "HEX-ARC-001" in ids(size.findings)
    depth = scan_path(archive_samples["deep.zip"], max_depth=2)
    assert "HEX-ARC-002" in ids(depth.findings)
    count = scan_path(archive_samples["many.zip"], max_members=4)
    assert "HEX-ARC-003" in ids(count.findings)
    encrypted = scan_path(archive_samples["encrypted.zip"])
    assert "HEX-ARC-004" in ids(encrypted.findings)


# --- polyglots -----------------------------------------------------------------------------

def test_zip_appended_to_png_is_scanned_both_ways(tmp_path: Path) -> None:
    data = png_bytes() + zip_bytes([("data.pkl", EVIL)])
    result = scan_path(write(tmp_path, "cat.png", data))
    (poly,) = [f for f in result.findings if f.rule.id == "HEX-ARC-009"]
    assert poly.evidence["zip_start"] == len(png_bytes())
    assert any(f.member == "data.pkl" and f.rule.id.startswith("HEX-PKL")
               for f in result.findings)


def test_pickle_with_zip_tail_is_high(tmp_path: Path) -> None:
    head = pickle.dumps({"weights": [1.0, 2.0]}, protocol=2)
    data = head + zip_bytes([("archive/data.pkl", EVIL)])
    result = scan_path(write(tmp_path, "model.pkl", data))
    (poly,) = [f for f in result.findings if f.rule.id == "HEX-ARC-009"]
    assert poly.effective_severity is Severity.HIGH and poly.evidence["first_format"] == "pickle"
    assert any(f.member == "archive/data.pkl" and f.rule.id.startswith("HEX-PKL")
               for f in result.findings)


def test_data_prepended_to_a_zip(tmp_path: Path) -> None:
    data = b"\x13\x37junk header\x00" * 50 + zip_bytes([("model.pkl", PAYLOAD)])
    result = scan_path(write(tmp_path, "weights.bin", data))
    assert "HEX-ARC-009" in ids(result.findings)
    assert "model.pkl" in {f.member for f in result.files}


def test_plain_files_are_not_polyglots(tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    for name in ("payload.pkl", "plain.zip", "model.pt", "arrays.npz"):
        assert "HEX-ARC-009" not in ids(scan_path(archive_samples[name]).findings), name
    assert ids(scan_path(write(tmp_path, "x.png", png_bytes())).findings) == []


def test_end_record_finder_survives_fuzzing() -> None:
    good = zip_bytes([("a", b"x" * 100), ("b", b"y")])
    outcome = fuzz(lambda d: members.find_end_record(d, 0), [good, b"PK\x05\x06" * 10],
                   rounds=3000)
    assert outcome["ok"] == 3000


def test_fuzzed_archives_never_crash_the_walk(tmp_path: Path) -> None:
    seeds = [zip_bytes([("../x.pkl", PAYLOAD), ("a.pkl", EVIL)]),
             _tar_with(_link("l", "/etc/passwd")), png_bytes() + zip_bytes([("d", EVIL)])]
    path = tmp_path / "f.bin"

    def run(data: bytes) -> None:
        path.write_bytes(data)
        result = scan_path(path)
        assert not any(e.kind in ("crash", "scanner-error") for e in result.errors), \
            result.errors

    fuzz(run, seeds, rounds=600)
