"""Confidence intervals for the agreement rates the reports quote.

A top-1 agreement measured on a few hundred photos is a binomial estimate: 292/300 (97.3%) is
compatible with anything from ~95% to ~98.6%. Reports print the Wilson score interval beside
the rate so that a bar such as "int8 agrees with fp32 on >= 98%" is read against it.
"""

from __future__ import annotations

import math


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial rate.

    Args:
        hits: successes (e.g. photos whose int8 top-1 equals the fp32 top-1).
        n: trials (photos), at least 1.
        z: standard-normal quantile (1.96: 95% two-sided).

    Returns:
        ``(low, high)`` within [0, 1].

    Raises:
        ValueError: ``n < 1`` or ``hits`` outside ``[0, n]``.
    """
    if n < 1 or not 0 <= hits <= n:
        raise ValueError(f"wilson_interval: need 0 <= hits <= n and n >= 1, got hits={hits}, n={n}")
    p, z2 = hits / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
