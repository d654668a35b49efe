"""A plug-in policy in the compiled form (docs/simulator.md 'Writing a policy'), for
``benchmarks/cli_throughput.py --plugin``: UCBSpec's arithmetic in the user's own module
(``--policy-module benchmarks/compiled_plugin.py``), its numpy methods inherited."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from simulator.kernels import njit
from simulator.kernels.learners import Kernel, argmax
from simulator.policies import register
from simulator.policies.ucbspec import UCBSpec


@njit(inline="always")
def plugin_select(A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    t = ist[0]
    if t < A:
        return t
    c = 4.0 * math.log(max(t, 1))
    for i in range(A):
        tmp[i] = st[1, i] + ftab[i] * math.sqrt(st[2, i] * (st[3, i] + c))
    return argmax(tmp, A)


@njit(inline="always")
def plugin_update(arm, r, A, st, ist, prm, itab, ftab, F, prompt, pos, e, tmp):
    ist[0] += 1
    st[0, arm] += 1.0
    st[4, arm] += r
    n = st[0, arm]
    st[1, arm] = st[4, arm] / n
    st[2, arm] = (1 + n) / (n * n)
    st[3, arm] = 1.0 + 2.0 * math.log(A * math.sqrt(1 + n) / prm[2])


@register
@dataclass
class UCBSpecPlugin(UCBSpec):
    """UCBSpec, compiled from this module."""

    name: ClassVar[str] = "ucbspec-plugin"
    kernel: ClassVar[Kernel] = Kernel("ucbspec-plugin", plugin_select, plugin_update)
