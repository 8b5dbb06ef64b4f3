"""A set of strings in about 20 bytes each, whatever their length: what the driver remembers per video."""

from __future__ import annotations

import hashlib

import numpy as np


class DigestSet:
    """Strings kept as 128-bit BLAKE2b digests (two distinct strings collide with a chance of about 10^-23 among
    10^8 of them): the newest in a Python set, the rest in two arrays sorted by the digests' high halves, which
    the set is inserted into once it holds an eighth as many (each digest is moved a logarithmic number of
    times). A set of the strings themselves costs over 100 bytes each: a driver listing 10^7 videos would hold a
    gigabyte."""

    MIN_MERGE = 65_536

    def __init__(self) -> None:
        self._recent: set[bytes] = set()
        self._high: np.ndarray = np.empty(0, np.uint64)  # sorted
        self._low: np.ndarray = np.empty(0, np.uint64)  # the low half of the digest whose high half is beside it

    def __len__(self) -> int:
        return len(self._recent) + len(self._high)

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str) or not len(self):  # a fresh output: nothing to hash against
            return False
        digest = _digest(text)
        return digest in self._recent or self._in_sorted(digest)

    def add(self, text: str) -> bool:
        """Keep ``text``; False if it was there already."""
        digest = _digest(text)
        if digest in self._recent or self._in_sorted(digest):
            return False
        self._recent.add(digest)
        if len(self._recent) >= max(self.MIN_MERGE, len(self._high) // 8):
            self._merge()
        return True

    def _in_sorted(self, digest: bytes) -> bool:
        high = np.uint64(int.from_bytes(digest[:8], "little"))
        start, stop = np.searchsorted(self._high, high, "left"), np.searchsorted(self._high, high, "right")
        if start == stop:
            return False
        return bool(np.any(self._low[start:stop] == np.uint64(int.from_bytes(digest[8:], "little"))))

    def _merge(self) -> None:
        # Inserted where they sort by their high halves (equal high halves, about one pair in 10^19 among 10^10
        # digests, are scanned whole by _in_sorted): the new arrays are the only copy, where a sort of the
        # concatenation would need three.
        unsorted = np.frombuffer(b"".join(self._recent), dtype="<u8").reshape(-1, 2)
        recent = unsorted[np.argsort(unsorted[:, 0], kind="stable")]
        at = np.searchsorted(self._high, recent[:, 0])
        self._high, self._low = np.insert(self._high, at, recent[:, 0]), np.insert(self._low, at, recent[:, 1])
        self._recent.clear()


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()
