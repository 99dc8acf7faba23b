"""Deterministic randomness: the same numbers on every machine and Python build.

Only integer arithmetic and IEEE-754 basic operations (``+ - * /`` and ``sqrt``, which are
correctly rounded everywhere) are used; no ``hash()``, no ``math.exp``/``log``/``pow``, whose last
bits may differ between C libraries.
"""

from __future__ import annotations

import hashlib
import math

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

    def uniform(self) -> float:
        return unit_float(self.next64())


def exp_neg(x: float) -> float:
    """Return e**-x for x >= 0 with basic float operations only (range reduction + Taylor)."""
    halvings = 0
    while x > 0.5:
        x /= 2.0
        halvings += 1
    term = 1.0
    total = 1.0
    for k in range(1, 18):
        term *= -x / k
        total += term
    for _ in range(halvings):
        total *= total
    return total


def poisson(stream: SplitMix, lam: float) -> int:
    """Draw a Poisson count with mean ``lam`` from ``stream`` (near-normal above 40)."""
    if lam <= 0.0:
        return 0
    if lam < 40.0:
        u = stream.uniform()
        p = exp_neg(lam)
        cdf = p
        k = 0
        while u > cdf and k < 400:
            k += 1
            p *= lam / k
            cdf += p
        return k
    # Irwin-Hall with four uniforms, scaled to unit variance: close enough to normal here.
    z = (
        stream.uniform() + stream.uniform() + stream.uniform() + stream.uniform() - 2.0
    ) * 1.7320508075688772
    return max(0, int(lam + math.sqrt(lam) * z + 0.5))
