import math

import pytest

from rootfree.train.schedule import lr_factor


def test_multistep_decays_at_each_milestone():
    factors = [
        lr_factor(s, 100, "multistep", milestones=(0.5, 0.75), gamma=0.1)
        for s in (0, 49, 50, 74, 75, 99)
    ]
    assert factors == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_warms_up_linearly_then_decays_to_min_factor():
    assert lr_factor(0, 110, "cosine", warmup_steps=10) == pytest.approx(0.1)
    assert lr_factor(9, 110, "cosine", warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(60, 110, "cosine", warmup_steps=10) == pytest.approx(0.5)
    assert lr_factor(110, 110, "cosine", warmup_steps=10, min_factor=0.01) == pytest.approx(0.01)
    assert lr_factor(35, 110, "cosine", warmup_steps=10) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="'linear'; choose one of"):
        lr_factor(0, 10, "linear")
