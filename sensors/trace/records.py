"""The record layer of a trace file: framing, CRCs, and resynchronisation after damage.

Version 2 (written now), after the 8-byte magic ``ETTRACE\\x02``::

    sync    4 bytes  E7 7C 0A 55
    type    u8
    length  u32      payload bytes
    seq     u32      record number in the file (the header is 0)
    crc     u32      CRC-32 of the payload
    hcrc    u32      CRC-32 of the 17 bytes before it (sync .. crc)
    payload

Version 1 (still read), after ``ETTRACE\\x01``: ``sync, type u8, length u32, crc u32``
with one CRC over type, length and payload, no sequence number.

The header CRC is what makes damage local: a flipped bit in a length (or type) fails it,
so the reader never trusts an implausible length; it searches forward for the next sync
word whose header CRC holds (a sync pattern inside sample data is rejected by that CRC)
and goes on from there. A failed payload CRC is handled the same way (a torn write that
was resumed leaves a record whose length runs over the records after it). A record is
reported *truncated* only when no valid record follows it: that is the end of the file.
Version-1 records are validated by their one CRC over the whole record.

The scanner reads the file piecewise (one record at a time, resync in 1 MiB blocks),
never the whole file.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

MAGIC_V1 = b"ETTRACE\x01"
MAGIC_V2 = b"ETTRACE\x02"
SYNC = b"\xe7\x7c\x0a\x55"
HEADER_V1 = struct.Struct("<4sBII")  # sync, type, length, crc(type, length, payload)
HEADER_V2 = struct.Struct("<4sBIIII")  # sync, type, length, seq, crc(payload), crc(the 17 bytes before)
TYPE_HEADER, TYPE_SAMPLES, TYPE_EVENTS, TYPE_META, TYPE_CLOSE, TYPE_SPECS = 1, 2, 3, 4, 5, 6
RECORD_TYPES = (TYPE_HEADER, TYPE_SAMPLES, TYPE_EVENTS, TYPE_META, TYPE_CLOSE, TYPE_SPECS)
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
SCAN_BLOCK_BYTES = 1 << 20


def _crc(data: bytes, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def encode_record(record_type: int, payload: bytes, seq: int) -> bytes:
    """One version-2 record (header with its own CRC, then the payload)."""
    head = struct.pack("<4sBIII", SYNC, record_type, len(payload), seq & 0xFFFFFFFF, _crc(payload))
    return head + struct.pack("<I", _crc(head)) + payload


def encode_record_v1(record_type: int, payload: bytes) -> bytes:
    """One version-1 record (kept for tests of old files)."""
    crc = _crc(payload, _crc(struct.pack("<BI", record_type, len(payload))))
    return HEADER_V1.pack(SYNC, record_type, len(payload), crc) + payload


@dataclass(frozen=True)
class Record:
    """A record whose CRCs hold: where it starts, its type, sequence number (None in v1) and payload."""

    offset: int
    type: int
    seq: int | None
    payload: bytes


@dataclass(frozen=True)
class DamagedRegion:
    """Bytes the reader had to skip: from ``offset`` to ``resume`` (the next valid record or the end)."""

    offset: int
    resume: int
    reason: str

    def to_dict(self) -> dict:
        """JSON form."""
        return {"offset": self.offset, "resume": self.resume, "bytes": self.resume - self.offset, "reason": self.reason}


class RecordScanner:
    """Valid records of one trace file in order, skipping damaged regions (``damaged``, ``truncated_at``)."""

    def __init__(self, handle: BinaryIO, name: str = "trace") -> None:
        self.handle = handle
        self.name = name
        self.size = os.fstat(handle.fileno()).st_size
        self.damaged: list[DamagedRegion] = []
        self.truncated_at: int | None = None
        self.magic_damaged = False
        handle.seek(0)
        magic = handle.read(len(MAGIC_V1))
        if magic == MAGIC_V2:
            self.version = 2
        elif magic == MAGIC_V1:
            self.version = 1
        else:
            self.version = self._guess_version(magic)
            self.magic_damaged = True
        self.start = len(MAGIC_V1)

    def _guess_version(self, magic: bytes) -> int:
        """A damaged magic still reads when a valid record follows it (else: not a trace)."""
        for version in (2, 1):
            self.version = version
            if self._record_at(len(MAGIC_V1))[0] is not None:
                return version
        raise ValueError(f"{self.name}: not an EdgeTran trace (bad magic {magic[:8]!r})")

    def _read(self, offset: int, n: int) -> bytes:
        self.handle.seek(offset)
        return self.handle.read(n)

    def _record_at(self, offset: int) -> tuple[Record | None, str, int]:
        """(record or None, why not, end offset) for a record claimed to start at ``offset``."""
        if self.version == 2:
            head = self._read(offset, HEADER_V2.size)
            if len(head) < HEADER_V2.size:
                return None, "short record header", self.size
            sync, record_type, length, seq, crc, hcrc = HEADER_V2.unpack(head)
            if sync != SYNC:
                return None, "lost sync", offset
            if _crc(head[:17]) != hcrc:
                return None, "record header CRC mismatch", offset
            if record_type not in RECORD_TYPES or length > MAX_PAYLOAD_BYTES:
                return None, f"bad record type {record_type} or length {length}", offset
            end = offset + HEADER_V2.size + length
            if end > self.size:
                return None, "record runs past the end of the file", end
            payload = self.handle.read(length)
            if _crc(payload) != crc:
                return None, "payload CRC mismatch", end
            return Record(offset, record_type, seq, payload), "", end
        head = self._read(offset, HEADER_V1.size)
        if len(head) < HEADER_V1.size:
            return None, "short record header", self.size
        sync, record_type, length, crc = HEADER_V1.unpack(head)
        if sync != SYNC:
            return None, "lost sync", offset
        if record_type not in RECORD_TYPES or length > MAX_PAYLOAD_BYTES:
            return None, f"bad record type {record_type} or length {length}", offset
        end = offset + HEADER_V1.size + length
        if end > self.size:
            return None, "record runs past the end of the file", end
        payload = self.handle.read(length)
        if _crc(payload, _crc(struct.pack("<BI", record_type, length))) != crc:
            return None, "CRC mismatch", end
        return Record(offset, record_type, None, payload), "", end

    def _find_sync(self, offset: int) -> int:
        """Offset of the next sync word at or after ``offset`` (-1 if none)."""
        while offset < self.size:
            block = self._read(offset, SCAN_BLOCK_BYTES + len(SYNC) - 1)
            found = block.find(SYNC)
            if found >= 0:
                return offset + found
            offset += SCAN_BLOCK_BYTES
        return -1

    def _next_valid(self, offset: int) -> tuple[int, Record | None, int]:
        """The next record at or after ``offset`` whose CRCs hold: (offset, record, end), or (-1, None, -1)."""
        while True:
            candidate = self._find_sync(offset)
            if candidate < 0:
                return -1, None, -1
            record, _, end = self._record_at(candidate)
            if record is not None:
                return candidate, record, end
            offset = candidate + 1

    def records(self) -> Iterator[Record]:
        """Yield the valid records after the magic, recording damaged regions and a truncated end."""
        position = self.start
        while position < self.size:
            record, reason, end = self._record_at(position)
            if record is None:
                resume, record, end = self._next_valid(position + 1)
                if resume < 0:
                    if reason in ("short record header", "record runs past the end of the file"):
                        self.truncated_at = position
                    else:
                        self.damaged.append(DamagedRegion(position, self.size, reason))
                    return
                self.damaged.append(DamagedRegion(position, resume, reason))
            yield record
            position = end
