"""P6: the root-free step is invariant to rescaling a layer; Adam's and SGD's are not, by the
amounts their update rules predict (|1/a - 1| for Adam, |1/a^2 - 1| for SGD)."""

from __future__ import annotations

import pytest

from rootfree.results.invariance import invariance_table


def test_only_the_consistently_started_undamped_root_free_step_is_invariant():
    table = invariance_table().set_index(["optimizer", "scale"])
    invariant, shown = table["invariant"], table["relative_deviation"]
    for a in (0.1, 10.0):
        assert invariant[("RF-RMSProp, damping 0, S0 consistent", a)]
        assert shown[("RF-RMSProp, damping 0, S0 consistent", a)] == "< 1e-09"
        assert not invariant[("RF-RMSProp, damping 0, S0 = 1", a)]
        assert float(shown[("Adam", a)]) == pytest.approx(abs(1 / a - 1), rel=1e-3)
        assert float(shown[("SGD", a)]) == pytest.approx(abs(1 / a**2 - 1), rel=1e-2)
