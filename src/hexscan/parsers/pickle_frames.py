"""FRAME (protocol 4+) as the two unpicklers read it, and where their readings part.

``_pickle.c``'s FRAME only makes sure the frame's bytes are buffered: it then reads opcodes and
values straight through frame ends. ``pickle.py`` reads the whole frame into a buffer, refuses a
value or line that crosses its end, and when STOP comes before the end of the frame it has
already consumed the rest of it, so the next ``pickle.load`` on the same file starts at the frame
end while the C unpickler's starts right after STOP. The machine follows C's reading and, where
the two differ, also analyses the other one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hexscan.parsers.pickle_reader import _Malformed
from hexscan.parsers.pickle_view import LimitHit, Malformation


class _FrameRules:
    """FRAME handling (mixed into ``_Machine``)."""

    r: Any
    rec: Any
    limits: Any
    frame_end: int
    op_offset: int
    stream_index: int

    if TYPE_CHECKING:  # provided by the machine

        def _int_arg(self, fmt: str, size: int) -> int: ...
        def _force_nested(self, data: bytes) -> None: ...

    def _op_frame(self) -> None:
        size = self._int_arg("<Q", 8)
        if size > (1 << 63) - 1:
            raise _Malformed("FRAME size larger than sys.maxsize")
        self.frame_end = self.r.offset + size

    def _frame_overrun(self, start: int, data: bytes) -> None:
        """A value that runs past the end of its FRAME (anchors B9, python/cpython#154848).

        A frame-respecting unpickler stops the value at the frame end and reads the rest as
        opcodes; a reader that ignores frames (this machine, pickletools) sees one long value.
        Both readings are kept: the break is recorded and the bytes past the frame end are
        analysed as a pickle of their own.
        """
        cut = self.frame_end - start
        self.rec.malformations.append(Malformation(
            self.op_offset, f"a {len(data)}-byte value runs {len(data) - cut} bytes past the end "
            "of its FRAME; a frame-respecting unpickler reads those bytes as opcodes",
            self.stream_index))
        self._force_nested(data[cut:])

    def _stop_inside_frame(self) -> None:
        """STOP before the end of its FRAME: the next stream starts after STOP for ``_pickle.c``
        (followed by the machine) but at the frame end for ``pickle.py``, which is analysed as a
        pickle of its own (up to ``max_value_bytes`` of it; the break itself is recorded)."""
        r = self.r
        rest_of_frame = self.frame_end - r.offset
        self.rec.malformations.append(Malformation(
            self.op_offset, f"STOP {rest_of_frame} bytes before the end of its FRAME: the Python "
            "unpickler skips them and reads on at the frame end, the C unpickler reads them",
            self.stream_index))
        if rest_of_frame > self.limits.max_value_bytes:
            self.rec.limits.append(LimitHit(
                "max_value_bytes", self.op_offset,
                "the rest of a FRAME after STOP is too large to read the stream after it"))
            return
        window = rest_of_frame + self.limits.max_value_bytes
        r.fill(window)
        after = r.buf[r.pos + rest_of_frame : r.pos + window]
        if after:
            self._force_nested(after)
