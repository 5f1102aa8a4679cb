"""Containers as virtual directories: archives.iter_members and the per-file walk.

These drive the real readers in-process on real archives (tests/fixtures/archives.py);
the end-to-end behaviour is in tests/e2e/test_discovery.py.
"""

from __future__ import annotations

import bz2
import gc
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.archives import PAYLOAD, tar_bytes, zip_bytes

from hexscan.discover import archives
from hexscan.discover.artifact import Artifact
from hexscan.discover.streams import Budget
from hexscan.engine.limits import ResourceLimits
from hexscan.engine.walk import Task, WorkerSettings, scan_task
from hexscan.errors import LimitExceeded
from hexscan.formats.kinds import Format
from hexscan.model.finding import Finding
from hexscan.model.report import Status, TaskResult
from hexscan.scanners.registry import load_scanners


def events(path: Path, fmt: Format, **limits: int | float) -> list[archives.Event]:
    """Every event; member artifacts are read while the container is open (they are only
    valid during the walk) and handed back holding their bytes."""
    bounds = ResourceLimits(**limits)  # type: ignore[arg-type]
    walk = archives.Walk(bounds, Budget(bounds.max_total_size))
    out: list[archives.Event] = []
    for event in archives.iter_members(Artifact.from_file(str(path), path.name), fmt, walk):
        if isinstance(event, Artifact):
            with event.open() as stream:
                data = stream.read()
            event.opener = lambda data=data: io.BytesIO(data)  # type: ignore[misc]
            event.head()
        out.append(event)
    return out


def scan(path: Path, hash_: bool = False, **limits: int | float) -> TaskResult:
    settings = WorkerSettings(limits=ResourceLimits(**limits),  # type: ignore[arg-type]
                              hash=hash_)
    return scan_task(Task(str(path), path.name), settings, load_scanners())


def members(result: TaskResult) -> dict[str | None, tuple[str, Status]]:
    return {f.member: (f.format, f.status) for f in result.files}


def test_zip_members_are_artifacts_read_without_extracting(
        archive_samples: dict[str, Path]) -> None:
    found = events(archive_samples["plain.zip"], Format.ZIP)
    arts = {e.member: e for e in found if isinstance(e, Artifact)}
    assert set(arts) == {"model.pkl", "dir/weights.npy", "README.md"}
    model = arts["model.pkl"]
    assert model.file_path == str(archive_samples["plain.zip"]) and model.depth == 1
    with model.open() as stream:
        assert stream.read() == PAYLOAD
    assert model.head() == PAYLOAD and model.size == len(PAYLOAD)


def _handles_on(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve())
        except OSError:
            continue
    return count


def test_zip_walk_leaves_no_file_open(archive_samples: dict[str, Path]) -> None:
    """Members are read on streams of their own; the walk closes every one of them."""
    path = archive_samples["plain.zip"]
    before = _handles_on(path)
    bounds = ResourceLimits()
    walk = archives.Walk(bounds, Budget(bounds.max_total_size))
    container = Artifact.from_file(str(path), "plain.zip")
    for event in archives.iter_members(container, Format.ZIP, walk):
        if isinstance(event, Artifact):
            assert event.head()
            with event.open() as stream:
                stream.read(3)
    gc.collect()
    assert _handles_on(path) == before


def test_tar_members_and_link_member(archive_samples: dict[str, Path]) -> None:
    found = events(archive_samples["plain.tar"], Format.TAR)
    arts = {e.member: e for e in found if isinstance(e, Artifact)}
    assert set(arts) == {"model.pkl", "sub/config.json"}
    with arts["model.pkl"].open() as stream:
        assert stream.read() == PAYLOAD
    (link,) = [e for e in found if isinstance(e, archives.Skipped)]
    assert link.name == "link.pkl" and "link" in link.reason


@pytest.mark.parametrize(("sample", "fmt", "name"), [
    ("model.pkl.gz", Format.GZIP, "model.pkl"),
    ("model.pkl.bz2", Format.BZIP2, "model.pkl"),
    ("model.pkl.xz", Format.XZ, "model.pkl"),
])
def test_compressed_stream_is_one_member(archive_samples: dict[str, Path], sample: str,
                                         fmt: Format, name: str) -> None:
    (member,) = events(archive_samples[sample], fmt)
    assert isinstance(member, Artifact) and member.member == name
    assert member.size is None  # unknown until read
    with member.open() as stream:
        assert stream.read() == PAYLOAD


def test_7z_members(archive_samples: dict[str, Path]) -> None:
    arts = {e.member: e for e in events(archive_samples["plain.7z"], Format.SEVEN_ZIP)
            if isinstance(e, Artifact)}
    assert set(arts) == {"model.pkl", "sub/config.json"}
    with arts["model.pkl"].open() as stream:
        assert stream.read() == PAYLOAD


def test_encrypted_zip_member_is_a_finding_and_unread(
        archive_samples: dict[str, Path]) -> None:
    found = events(archive_samples["encrypted.zip"], Format.ZIP)
    finding = next(e for e in found if isinstance(e, Finding))
    assert finding.rule.id == "HEX-ARC-004" and finding.evidence["member"] == "secret.pkl"
    unread = [e for e in found if isinstance(e, archives.Unread)]
    assert unread == [archives.Unread("secret.pkl", "unreadable",
                                      "encrypted member: content not inspected")]
    assert [e.member for e in found if isinstance(e, Artifact)] == ["open.txt"]


def test_member_count_bound(archive_samples: dict[str, Path]) -> None:
    for sample, fmt in (("many.zip", Format.ZIP), ("many.tar", Format.TAR)):
        found = events(archive_samples[sample], fmt, max_members=4)
        assert len([e for e in found if isinstance(e, Artifact)]) == 4
        assert [e.rule.id for e in found if isinstance(e, Finding)] == ["HEX-ARC-003"]
        assert [e.kind for e in found if isinstance(e, archives.Unread)] == ["limit"]
    exact = events(archive_samples["many.zip"], Format.ZIP, max_members=12)
    assert not any(isinstance(e, Finding | archives.Unread) for e in exact)


def test_declared_size_and_ratio_bounds(archive_samples: dict[str, Path]) -> None:
    big = events(archive_samples["big.tar"], Format.TAR, max_member_size=100_000)
    (bomb,) = [e for e in big if isinstance(e, Finding)]
    assert bomb.rule.id == "HEX-ARC-001" and bomb.evidence["size"] == 200_000
    assert [e.member for e in big if isinstance(e, Artifact)] == ["small.pkl"]
    ratio = events(archive_samples["bomb.zip"], Format.ZIP, max_ratio=50,
                   ratio_min_size=1024 * 1024)
    (bomb,) = [e for e in ratio if isinstance(e, Finding)]
    assert bomb.evidence["ratio"] > 50 and not any(isinstance(e, Artifact) for e in ratio)
    relaxed = events(archive_samples["bomb.zip"], Format.ZIP, max_ratio=5000)
    assert [type(e) for e in relaxed] == [Artifact]


@pytest.mark.parametrize(("compress", "fmt"), [
    (bz2.compress, Format.BZIP2), (lzma.compress, Format.XZ),
    (lambda d: gzip.compress(d, mtime=0), Format.GZIP),
])
def test_stream_ratio_bound_holds_for_small_packed_streams(
        tmp_path: Path, compress: Callable[[bytes], bytes], fmt: Format) -> None:
    path = tmp_path / "zeros.bin.z"
    path.write_bytes(compress(bytes(4 * 1024 * 1024)))
    assert path.stat().st_size < 8192  # a tiny file that expands 500x and more
    bounds = ResourceLimits(max_ratio=100, ratio_min_size=1024 * 1024)
    walk = archives.Walk(bounds, Budget(bounds.max_total_size))
    (member,) = archives.iter_members(Artifact.from_file(str(path), path.name), fmt, walk)
    assert isinstance(member, Artifact)
    with member.open() as stream, pytest.raises(LimitExceeded) as info:
        while stream.read(1024 * 1024):
            pass
    assert info.value.limit == "max_ratio"
    roomy = ResourceLimits(max_ratio=1e7, ratio_min_size=1024 * 1024)
    walk = archives.Walk(roomy, Budget(roomy.max_total_size))
    (member,) = archives.iter_members(Artifact.from_file(str(path), path.name), fmt, walk)
    with member.open() as stream:  # type: ignore[union-attr]
        assert len(stream.read()) == 4 * 1024 * 1024


def test_corrupt_zip_is_a_parse_error(archive_samples: dict[str, Path]) -> None:
    from hexscan.errors import ParseError

    with pytest.raises(ParseError):
        events(archive_samples["truncated.zip"], Format.ZIP)


# --- the per-file walk (in-process) -------------------------------------------------------

def test_nested_walk_joins_members_with_bang_slash(archive_samples: dict[str, Path]) -> None:
    result = scan(archive_samples["nested.tar.gz"], hash_=True)
    assert members(result) == {
        None: ("gzip", Status.SCANNED), "nested.tar": ("tar", Status.SCANNED),
        "nested.tar!/inner.zip": ("zip", Status.SCANNED),
        "nested.tar!/inner.zip!/deep/model.pkl": ("pickle", Status.SCANNED)}
    digest = {f.member: f.sha256 for f in result.files}
    assert digest["nested.tar!/inner.zip!/deep/model.pkl"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert result.errors == () and result.findings == ()


def test_depth_bound_stops_at_the_container(archive_samples: dict[str, Path]) -> None:
    result = scan(archive_samples["deep.zip"], max_depth=3)
    (finding,) = result.findings
    assert finding.rule.id == "HEX-ARC-002"
    assert finding.member == "l1.zip!/l2.zip!/l3.zip"
    assert finding.file_path == str(archive_samples["deep.zip"])
    assert [(e.member, e.kind) for e in result.errors] == [("l1.zip!/l2.zip!/l3.zip", "limit")]


def test_member_findings_name_the_nested_member(tmp_path: Path) -> None:
    inner = zip_bytes([(f"m{i}.txt", b"x") for i in range(3)])
    path = tmp_path / "outer.tar"
    path.write_bytes(tar_bytes([("pack/inner.zip", inner)]))
    result = scan(path, max_members=2)
    (finding,) = result.findings
    assert finding.rule.id == "HEX-ARC-003" and finding.member == "pack/inner.zip"
    assert [(e.member, e.kind) for e in result.errors] == [("pack/inner.zip", "limit")]
    big = tmp_path / "outer2.tar"
    big.write_bytes(tar_bytes([("in.zip", zip_bytes([("huge.bin", bytes(300_000))]))]))
    result = scan(big, max_member_size=200_000)
    (finding,) = result.findings
    assert finding.rule.id == "HEX-ARC-001" and finding.member == "in.zip!/huge.bin"


def test_total_budget_is_per_top_level_file(archive_samples: dict[str, Path]) -> None:
    result = scan(archive_samples["total.tar"], max_total_size=100_000)
    assert [(e.member, e.kind) for e in result.errors] == [("part2.bin", "limit")]
    again = scan(archive_samples["total.tar"], max_total_size=100_000)
    assert again.errors == result.errors  # a fresh budget per file, not a global one


def test_stream_ratio_bound(archive_samples: dict[str, Path]) -> None:
    result = scan(archive_samples["bomb.gz"], max_ratio=10, ratio_min_size=65536)
    assert [f.rule.id for f in result.findings] == ["HEX-ARC-001"]
    assert [(e.member, e.kind) for e in result.errors] == [("bomb", "limit")]
    assert result.errors[0].message.startswith("max_ratio")


def test_unreadable_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    result = scan(tmp_path / "vanished.pkl")
    assert [e.kind for e in result.errors] == ["unreadable"]


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    for name, data in (("empty.zip", b""), ("one.gz", b"\x1f"), ("pk.zip", b"PK\x03\x04")):
        path = tmp_path / name
        path.write_bytes(data)
        result = scan(path)
        assert len(result.files) >= 1, name  # reported, whatever it is
        assert not any(e.kind == "crash" for e in result.errors), (name, result.errors)


def test_walk_never_writes(tmp_path: Path, archive_samples: dict[str, Path]) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in archive_samples.values()}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for path in archive_samples.values():
            scan(path, hash_=True)
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []
    assert {p.name: p.stat().st_mtime_ns for p in archive_samples.values()} == before


def test_zip_path_traversal_names_are_only_names(archive_samples: dict[str, Path]) -> None:
    result = scan(archive_samples["traversal.zip"])
    assert set(members(result)) == {None, "../../escaped.pkl", "/abs/evil.pkl"}
    with zipfile.ZipFile(archive_samples["traversal.zip"]) as zf:
        assert zf.namelist() == ["../../escaped.pkl", "/abs/evil.pkl"]


def test_tar_written_by_tarfile_gz_mode(tmp_path: Path) -> None:
    path = tmp_path / "model.tgz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("model.pkl")
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
    result = scan(path)
    assert members(result)["model.tar!/model.pkl"] == ("pickle", Status.SCANNED)


# --- zips that Python's zipfile refuses but lenient loaders read ---------------------------

def _patched_zip(tmp_path: Path, name: str, flag_bits: int = 0, local_name: bytes | None = None,
                 bad_crc: bool = False, compress: int = zipfile.ZIP_STORED) -> Path:
    """A real zip (written by zipfile) with header fields patched the way published
    scanner bypasses did (CVE-2025-1944, CVE-2025-1945, bad CRC)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as zf:
        zf.writestr("model/data.pkl", PAYLOAD)
    data = bytearray(buffer.getvalue())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    for header, flag_at, crc_at in ((local, 6, 14), (central, 8, 16)):
        data[header + flag_at] |= flag_bits
        if bad_crc:
            data[header + crc_at] ^= 0xFF
    if local_name is not None:
        start = local + 30
        data[start:start + len(local_name)] = local_name
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("case", [
    {"flag_bits": 0x20}, {"flag_bits": 0x40}, {"local_name": b"model/datap.kl"},
    {"bad_crc": True}, {"bad_crc": True, "compress": zipfile.ZIP_DEFLATED},
    {"flag_bits": 0x20, "compress": zipfile.ZIP_DEFLATED},
], ids=["patch-flag", "strong-encryption-flag", "local-name-differs", "bad-crc",
        "bad-crc-deflated", "patch-flag-deflated"])
def test_zip_quirks_are_read_like_a_lenient_loader(tmp_path: Path, case: dict) -> None:
    path = _patched_zip(tmp_path, "quirky.zip", **case)
    with pytest.raises((zipfile.BadZipFile, NotImplementedError)):  # zipfile refuses it
        zipfile.ZipFile(path).read("model/data.pkl")
    result = scan(path)
    assert members(result)["model/data.pkl"] == ("pickle", Status.SCANNED)
    assert not result.errors


def test_encryption_flag_on_plain_data_is_medium_and_still_scanned(tmp_path: Path) -> None:
    path = _patched_zip(tmp_path, "flagged.zip", flag_bits=0x1)
    result = scan(path)
    assert members(result)["model/data.pkl"] == ("pickle", Status.SCANNED)
    (finding,) = [f for f in result.findings if f.rule.id == "HEX-ARC-004"]
    assert finding.effective_severity.name == "MEDIUM" and finding.evidence["plaintext"]
    assert not result.errors


def test_really_encrypted_member_is_low_and_incomplete(archive_samples: dict[str, Path]) -> None:
    result = scan(archive_samples["encrypted.zip"])
    (finding,) = [f for f in result.findings if f.rule.id == "HEX-ARC-004"]
    assert finding.effective_severity.name == "LOW"
    assert [e.kind for e in result.errors] == ["unreadable"]


class _CountingFile(io.FileIO):
    """A real file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        _CountingFile.read_bytes += len(data)
        return data


def test_stored_member_tail_is_read_without_reading_the_member(tmp_path: Path) -> None:
    """Identification reads a member's head and tail: for a stored (uncompressed) member,
    as tensor storages in PyTorch zips are, that must not read the whole member."""
    from hexscan.discover.zipraw import RawZipMember

    blob = os.urandom(8 * 1024 * 1024)
    path = tmp_path / "storage.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data/0", blob)
    (info,) = zipfile.ZipFile(path).infolist()
    _CountingFile.read_bytes = 0
    with RawZipMember(_CountingFile(path), info) as member:
        member.seek(len(blob) - 64)
        assert member.read(64) == blob[-64:]
        member.seek(1000)
        assert member.read(10) == blob[1000:1010]
    assert _CountingFile.read_bytes < 1024 * 1024
