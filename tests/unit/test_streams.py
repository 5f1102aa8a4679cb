"""The bounded read-only streams every container read goes through."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import pytest

from hexscan.discover.streams import BoundedStream, Budget, ZlibReader
from hexscan.errors import LimitExceeded


def test_bounded_stream_reads_up_to_the_limit() -> None:
    data = os.urandom(10_000)
    stream = io.BufferedReader(BoundedStream(io.BytesIO(data), 10_000))
    assert stream.read() == data


def test_bounded_stream_raises_past_the_limit_whatever_the_reader_asks() -> None:
    raw = BoundedStream(io.BytesIO(bytes(10_001)), 10_000, what="max_member_size")
    with pytest.raises(LimitExceeded) as info:
        io.BufferedReader(raw, 4096).read()
    assert info.value.limit == "max_member_size"


def test_bounded_stream_limits_a_decompressing_reader() -> None:
    bomb = gzip.compress(bytes(5_000_000))
    raw = BoundedStream(gzip.GzipFile(fileobj=io.BytesIO(bomb)), 1_000_000, what="max_ratio")
    with pytest.raises(LimitExceeded) as info:
        while raw.read(65536):
            pass
    assert info.value.limit == "max_ratio"


def test_rereading_after_seek_is_not_charged_twice() -> None:
    budget = Budget(15_000)
    raw = BoundedStream(io.BytesIO(os.urandom(10_000)), 10_000, budget)
    assert raw.seekable()
    assert len(raw.read(10_000)) == 10_000
    raw.seek(0)
    assert len(raw.read(10_000)) == 10_000
    assert budget.used == 10_000


def test_budget_is_shared_across_streams() -> None:
    budget = Budget(15_000)
    first = BoundedStream(io.BytesIO(bytes(10_000)), 10_000, budget)
    assert len(first.read(10_000)) == 10_000
    second = BoundedStream(io.BytesIO(bytes(10_000)), 10_000, budget)
    with pytest.raises(LimitExceeded) as info:
        second.read(10_000)
    assert info.value.limit == "max_total_size"


def test_close_closes_the_underlying_stream() -> None:
    inner = io.BytesIO(b"abc")
    BoundedStream(inner, 10).close()
    assert inner.closed


def test_zlib_reader_matches_zlib() -> None:
    data = os.urandom(50_000) + bytes(300_000)
    packed = io.BytesIO(b"prefix" + zlib.compress(data, 6))
    packed.seek(6)  # the reader starts wherever the stream is positioned
    reader = ZlibReader(packed)
    assert io.BufferedReader(reader).read() == data


def test_zlib_reader_seeks_forward_and_back() -> None:
    data = bytes(range(256)) * 2000
    reader = ZlibReader(io.BytesIO(zlib.compress(data)))
    assert reader.seek(1000) == 1000
    assert reader.read(10) == data[1000:1010]
    assert reader.seek(5) == 5 and reader.tell() == 5  # back: restarts decompression
    assert reader.read(4) == data[5:9]
    assert reader.seek(10, io.SEEK_CUR) == 19
    assert reader.read(3) == data[19:22]
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0, io.SEEK_END)


def test_zlib_reader_on_truncated_input_is_an_error() -> None:
    data = os.urandom(20_000)
    packed = zlib.compress(data)
    reader = io.BufferedReader(ZlibReader(io.BytesIO(packed[: len(packed) // 2])))
    with pytest.raises(EOFError):
        reader.read()


def test_zlib_reader_stops_at_the_end_of_the_stream() -> None:
    data = os.urandom(1000)
    reader = ZlibReader(io.BytesIO(zlib.compress(data) + b"trailing bytes"))
    assert io.BufferedReader(reader).read() == data


def test_zlib_reader_rejects_garbage() -> None:
    with pytest.raises(zlib.error):
        ZlibReader(io.BytesIO(b"\x78\x9c" + b"\xff" * 100)).read(100)
