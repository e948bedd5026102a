"""When a Kronecker method refreshes its preconditioner.

``fixed`` refreshes at steps 0, T, 2T, ... (SIRFShampoo's ``step % T == 0``). ``log4`` is the
warm-up of the authors' IF-Shampoo (docs/update_rules.md): after an update at step t the next
one comes min(max(floor(log4(t + 1)), 1), T) steps later, so every step early on, every T later.
"""

from __future__ import annotations

SCHEDULES = ("fixed", "log4")


def next_update_step(step: int, update_every: int, schedule: str) -> int:
    """The step of the next refresh, given one at ``step`` (steps count from 0)."""
    if schedule == "fixed":
        return step + update_every
    floor_log4 = ((step + 1).bit_length() - 1) // 2
    return step + min(max(floor_log4, 1), update_every)
