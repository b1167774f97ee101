"""The learning rate as a pure function of the iteration (so resuming needs no scheduler state)."""

from __future__ import annotations

import math

from sr_train.recipe import SchedulerConfig


def learning_rate(iteration: int, base: float, sched: SchedulerConfig, iters: int) -> float:
    """The learning rate of an iteration (0-based): a pure function, so resuming needs no scheduler state.

    cosine_restart: within period i (lengths `periods`, default one period of `iters`), the rate
    falls from base × restart_weights[i] to eta_min along half a cosine (BasicSR's
    CosineAnnealingRestartLR, which PaddleGAN uses); after the last period it stays at eta_min.
    multistep: base × gamma^(number of milestones ≤ iteration). constant: base.
    """
    if sched.name == "constant":
        return base
    if sched.name == "multistep":
        return base * sched.gamma ** sum(1 for m in sched.milestones if iteration >= m)
    periods = sched.periods or [iters]
    weights = sched.restart_weights or [1.0] * len(periods)
    begin = 0
    for period, weight in zip(periods, weights):
        if iteration < begin + period:
            progress = (iteration - begin) / period
            return sched.eta_min + weight * 0.5 * (base - sched.eta_min) * (1 + math.cos(math.pi * progress))
        begin += period
    return sched.eta_min
