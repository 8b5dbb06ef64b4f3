"""A set of strings in about 25 bytes each, whatever their length: what the driver remembers per video."""

from __future__ import annotations

import hashlib

import numpy as np


class DigestSet:
    """Strings kept as 128-bit BLAKE2b digests (two distinct strings collide with a chance of about 10^-24 among
    10^8 of them): the newest in a Python set, the rest in sorted arrays that the set is merged into once it holds
    an eighth as many (each digest is moved a logarithmic number of times). A set of the strings themselves costs
    over 100 bytes each: a driver listing 10^7 videos would hold a gigabyte."""

    MIN_MERGE = 65_536

    def __init__(self) -> None:
        self._recent: set[bytes] = set()
        self._high = np.empty(0, np.uint64)  # sorted by (high, low)
        self._low = np.empty(0, np.uint64)

    def __len__(self) -> int:
        return len(self._recent) + len(self._high)

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
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
        recent = np.frombuffer(b"".join(self._recent), dtype="<u8").reshape(-1, 2)
        high, low = np.concatenate([self._high, recent[:, 0]]), np.concatenate([self._low, recent[:, 1]])
        order = np.lexsort((low, high))
        self._high, self._low = high[order], low[order]
        self._recent.clear()


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()
