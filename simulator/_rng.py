"""Deterministic randomness: the same numbers on every machine and Python build.

Only integer arithmetic and IEEE-754 basic operations (``+ - * /`` and ``sqrt``, which are
correctly rounded everywhere) are used; no ``hash()``, no ``math.exp``/``log``/``pow``, whose last
bits may differ between C libraries. ``simulator.arrays`` holds the element-wise twins used on
numpy arrays (the Poisson draw and ``exp_neg`` of the plans live only there).
"""

from __future__ import annotations

import hashlib

M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TWO_53 = float(1 << 53)


def mix64(x: int) -> int:
    """Return the splitmix64 finaliser of ``x`` (a 64-bit bijection with good avalanche)."""
    z = (x + _GOLDEN) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def hash_ints(*values: int) -> int:
    """Return a 64-bit hash of the integers ``values`` (order matters)."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = mix64(h ^ (v & M64))
    return h


def text_key(text: str) -> int:
    """Return a stable 64-bit key of ``text`` (blake2b), never Python's salted ``hash()``."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def unit_float(h: int) -> float:
    """Map a 64-bit hash to a float in [0, 1) exactly (53 significant bits)."""
    return (h >> 11) / _TWO_53


class SplitMix:
    """A tiny deterministic stream of 64-bit numbers (splitmix64)."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & M64

    def next64(self) -> int:
        self._state = (self._state + _GOLDEN) & M64
        return mix64(self._state)
