"""converters.ship.intervals: the Wilson interval quoted beside agreement rates."""

from __future__ import annotations

import pytest

from converters.ship.intervals import wilson_interval


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(969, 1000)  # hand-computed from the Wilson formula
    assert low == pytest.approx(0.95633, abs=2e-5) and high == pytest.approx(0.97808, abs=2e-5)
    low, high = wilson_interval(292, 300)
    assert 0.94 < low < 0.96 and 0.98 < high < 0.99  # 97.3% on 300 photos does not exclude 98%


def test_wilson_interval_edges() -> None:
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] > 0.65
    assert wilson_interval(0, 10)[0] == 0.0
    narrow, wide = wilson_interval(980, 1000), wilson_interval(98, 100)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    for hits, n in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="wilson_interval"):
            wilson_interval(hits, n)
