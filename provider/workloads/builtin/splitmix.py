"""SplitMix64, the one pseudo-random generator the seeded built-ins use (integer arithmetic only).

Definition, so anyone can reproduce it in another language (all arithmetic modulo 2**64):

    GAMMA = 0x9E3779B97F4A7C15
    the k-th output (k = 0, 1, 2, ...) of the generator seeded with `seed` is mix(seed + (k + 1) * GAMMA)
    mix(z): z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB
            return z ^ (z >> 31)

This is Steele, Lea and Flood's SplitMix64 (the generator Java's SplittableRandom and
xoshiro's seeding use): seeded with 0 its first outputs are 0xE220A8397B1DCDAF,
0x6E789E6AA1B965F4, 0x06C45D188009454F. Because the k-th output depends only on k, a
workload can split a stream between tasks without changing a single number.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB


def mix(z: int) -> int:
    """SplitMix64's output function on a 64-bit state."""
    z = ((z ^ (z >> 30)) * _MUL1) & MASK64
    z = ((z ^ (z >> 27)) * _MUL2) & MASK64
    return z ^ (z >> 31)


def output(seed: int, k: int) -> int:
    """The k-th (from 0) 64-bit output of SplitMix64 seeded with `seed`."""
    return mix((seed + (k + 1) * GAMMA) & MASK64)
