"""From a numpy policy to its kernel's tables: the policy's own ``reset`` builds them (arm
lookups, experts, drafter maps), so the two engines share one construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..policies import Policy, PolicyContext
from . import learners as kl


@dataclass
class LearnerArgs:
    code: int
    prm: np.ndarray  # float64
    itab: np.ndarray  # int64
    ftab: np.ndarray  # float64
    rows: int
    cols: int

    def args(self) -> tuple:
        return self.code, self.prm, self.itab, self.ftab, self.rows, self.cols


def has_kernel(policy: Policy | type[Policy]) -> bool:
    """A class has a kernel when it declares one itself: a subclass (a user's variant of a
    built-in learner) runs on numpy unless it declares its own."""
    cls = policy if isinstance(policy, type) else type(policy)
    return cls.__dict__.get("kernel", "") in kl.CODES


def learner_args(policy: Policy, ctx: PolicyContext) -> LearnerArgs:
    """The kernel tables of ``policy`` in context ``ctx`` (``policy`` is reset on one lane)."""
    if not has_kernel(policy):
        raise ValueError(f"policy {policy.spec()!r} has no compiled kernel")
    code = kl.CODES[policy.kernel]
    policy.reset(1, ctx)
    A = ctx.n_arms
    prm = [ctx.reward_lo, ctx.reward_hi]
    itab: np.ndarray = np.zeros(1, np.int64)
    ftab: np.ndarray = np.zeros(A)
    f = float
    if code == kl.UCBSPEC:
        prm.append(policy.delta)
        ftab = policy.half_  # the radius scale of every arm: the numpy policy's own array
    elif code == kl.EXP3SPEC:
        prm.append(policy.eta_scale)
    elif code == kl.UCB1:
        prm.append(policy.alpha)
    elif code in (kl.KLUCB, kl.EPSGREEDY):
        prm.append(policy.c)
    elif code == kl.THOMPSON:
        prm.append(policy.sigma)
    elif code == kl.SWUCB:
        prm += [f(policy.window), policy.xi]
    elif code in (kl.HEURISTIC, kl.HEURISTIC_T):
        prm += [f(policy.start), f(policy.kmax_)]
        itab = policy._lookup.astype(np.int64)
    elif code == kl.BANDITSPEC_CODE:
        itab = policy.arm_of_.astype(np.int64)
    elif code == kl.FIXED:
        itab = np.array([policy.index_], np.int64)
    elif code == kl.ORACLE:
        itab = policy.best_.astype(np.int64)
    elif code in (kl.STRUCTURED, kl.SMARTSPEC):
        prm += [f(getattr(policy, "c", 0.0)), f(policy.at_risk_.shape[1]), f(policy.Kmax_)]
        itab = np.concatenate([policy.d_of_, policy.k_of_]).astype(np.int64)
        if code == kl.SMARTSPEC:
            ftab = ctx.arm_cost_s.astype(float) if ctx.arm_cost_s is not None else np.ones(A)
    elif code == kl.HEDGESPEC:
        N = len(policy.arm_of_)
        prm += [policy.eta, f(N), f(policy.window_), f(policy.learner == "normalhedge"),
                f(policy.loss == "acceptance")]
        itab = np.concatenate([policy.arm_of_, policy.K_, policy.col_]).astype(np.int64)
    prm_a = np.array(prm, np.float64)
    rows, cols = kl.state_shape(code, A, itab, prm_a)
    return LearnerArgs(code, prm_a, np.ascontiguousarray(itab), np.ascontiguousarray(ftab, np.float64), rows, cols)


def expert_losses(policy: Policy, G: np.ndarray) -> np.ndarray:
    """HedgeSpec's loss of every expert at every position, ``(P, N, T)`` from the gamma table
    ``G`` ``(P, D, T)``: it depends on (prompt, expert, position) only, so it is computed once
    for all lanes, with the arithmetic of ``HedgeSpec._losses`` in its order (same bits)."""
    P, _, T = G.shape
    W, K = policy.window_, policy.K_
    g = np.concatenate([G, np.zeros((P, G.shape[1], W))], axis=2)[:, policy.col_, :]  # (P, N, T + W)
    if policy.loss == "acceptance":
        return np.ascontiguousarray(1.0 - g[:, :, :T])
    prod, acc = np.ones((P, len(K), T)), np.zeros((P, len(K), T))
    for j in range(W):
        prod = prod * np.where(j < K[None, :, None], g[:, :, j:j + T], 0.0)
        acc = acc + prod
    return np.ascontiguousarray(1.0 - (1.0 + acc) / (W + 1))
