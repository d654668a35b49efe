"""Every built-in learner as scalar numba code, one lane at a time.

Each learner is a branch of ``init``/``on_prompt``/``select``/``update`` on its code; its
state lives in one float array ``st`` (rows x cols, layout below) and one int array ``ist``
(``ist[0]`` = rounds the learner has learned from).  The numpy policy of the same name
(``simulator/policies``) is the readable definition: every expression here repeats its
operations in its order (sums in index order, ``simulator.policies.base.rowsum``), so both
engines choose the same arms on the same uniforms; ``tests/test_kernels.py`` checks every
learner against its numpy policy and its reference twin.

Tables (``simulator.kernels.adapters`` builds them from a reset numpy policy): ``prm``
floats, ``itab`` ints, ``ftab`` floats.  ``glo``/``ghi`` = ``prm[0]``/``prm[1]``, the reward
range over the arm set.
"""

from __future__ import annotations

import math

import numpy as np

from .core import njit, uniform3, uniform_last, uniform_prefix

(UCBSPEC, EXP3SPEC, UCB1, KLUCB, THOMPSON, EPSGREEDY, EXP3IX, TSALLIS, SWUCB, HEURISTIC, HEURISTIC_T,
 BANDITSPEC_CODE, FIXED, UNIFORM, ORACLE, STRUCTURED, SMARTSPEC, HEDGESPEC) = range(18)

CODES = {"ucbspec": UCBSPEC, "exp3spec": EXP3SPEC, "ucb1": UCB1, "klucb": KLUCB, "thompson": THOMPSON,
         "epsilon-greedy": EPSGREEDY, "exp3-ix": EXP3IX, "tsallis-inf": TSALLIS, "sw-ucb": SWUCB,
         "heuristic": HEURISTIC, "heuristic_transient": HEURISTIC_T, "banditspec-code": BANDITSPEC_CODE,
         "fixed": FIXED, "uniform": UNIFORM, "oracle": ORACLE, "structured-ucb": STRUCTURED,
         "smartspec": SMARTSPEC, "hedgespec": HEDGESPEC}
FULL_INFORMATION = (HEDGESPEC,)

_NDTRI_P0 = np.array([-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
                      1.39312609387279679503E1, -1.23916583867381258016E0])
_NDTRI_Q0 = np.array([1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
                      -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
                      1.59056225126211695515E1, -1.18331621121330003142E0])
_NDTRI_P1 = np.array([4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
                      4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
                      -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4])
_NDTRI_Q1 = np.array([1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
                      1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
                      -3.80806407691578277194E-2, -9.33259480895457427372E-4])
_NDTRI_P2 = np.array([3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
                      1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
                      3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9])
_NDTRI_Q2 = np.array([6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
                      2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
                      2.89247864745380683936E-6, 6.79019408009981274425E-9])


@njit(inline="always")
def _polevl(x, c):
    a = c[0]
    for i in range(1, len(c)):
        a = a * x + c[i]
    return a


@njit(inline="always")
def _p1evl(x, c):
    a = x + c[0]
    for i in range(1, len(c)):
        a = a * x + c[i]
    return a


@njit(inline="always")
def _ndtri(y0):
    """Inverse standard normal CDF for ``0 < y0 < 1``: Cephes ``ndtri``, the algorithm of
    ``scipy.special.ndtri``, operation for operation (bit-identical; tested)."""
    code, y = 1, y0
    if y > 1.0 - 0.13533528323661269189:
        y, code = 1.0 - y, 0
    if y > 0.13533528323661269189:
        y = y - 0.5
        y2 = y * y
        x = y + y * (y2 * _polevl(y2, _NDTRI_P0) / _p1evl(y2, _NDTRI_Q0))
        return x * 2.50662827463100050242E0
    x = math.sqrt(-2.0 * math.log(y))
    x0 = x - math.log(x) / x
    z = 1.0 / x
    if x < 8.0:
        x1 = z * _polevl(z, _NDTRI_P1) / _p1evl(z, _NDTRI_Q1)
    else:
        x1 = z * _polevl(z, _NDTRI_P2) / _p1evl(z, _NDTRI_Q2)
    x = x0 - x1
    return -x if code != 0 else x


@njit(cache=True)
def ndtri(y0):
    """``_ndtri`` callable from Python (the learners inline ``_ndtri``)."""
    return _ndtri(y0)


@njit(inline="always")
def _argmax(v, n):
    best, bv = 0, v[0]
    for i in range(1, n):
        if v[i] > bv:
            best, bv = i, v[i]
    return best


@njit(inline="always")
def _categorical(st, row, n, u):
    """``simulator.policies.base.sample_categorical`` on ``st[row, :n]``: the number of prefix
    sums <= u.  (Rows are passed as indices, not views: a view costs reference counting
    every round.)"""
    acc, cnt = 0.0, 0
    for i in range(n):
        acc += st[row, i]
        if acc <= u:
            cnt += 1
    return min(cnt, n - 1)


@njit(inline="always")
def _exp_weights(st, lrow, prow, n, eta):
    """``p ∝ exp(-eta (L - min L))`` with ``L = st[lrow]``, normalised by a sum in index order,
    into ``st[prow]``."""
    m = st[lrow, 0]
    for i in range(1, n):
        m = min(m, st[lrow, i])
    s = 0.0
    for i in range(n):
        st[prow, i] = math.exp(-eta * (st[lrow, i] - m))
        s += st[prow, i]
    for i in range(n):
        st[prow, i] = st[prow, i] / s


@njit(inline="always")
def _bern_kl(p, q):
    p = min(max(p, 1e-12), 1 - 1e-12)
    q = min(max(q, 1e-12), 1 - 1e-12)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def state_shape(code: int, A: int, itab: np.ndarray, prm: np.ndarray) -> tuple[int, int]:
    """Rows and columns of ``st`` for learner ``code`` on ``A`` arms."""
    if code == SWUCB:
        return 4, max(A, int(prm[2]))
    if code in (STRUCTURED, SMARTSPEC):
        return 3 * int(prm[3]), int(prm[4])
    if code == HEDGESPEC:
        return 3, int(prm[3])
    return 5, A


@njit(inline="always")
def init(code, A, st, ist, prm, itab):
    if code == EXP3SPEC or code == EXP3IX or code == TSALLIS:
        for i in range(A):
            st[4 if code == EXP3SPEC else 1, i] = 1.0 / A
    elif code == SWUCB:
        for j in range(int(prm[2])):
            st[1, j] = -1.0
    elif code == HEURISTIC or code == HEURISTIC_T:
        ist[1] = min(int(prm[2]), int(prm[3]))
    elif code == BANDITSPEC_CODE:
        ist[1] = 1
    elif code == HEDGESPEC:
        N = int(prm[3])
        for i in range(N):
            st[2, i] = 1.0 / N
    elif code == THOMPSON:  # the prior N(0.5, sigma^2) of every arm
        for i in range(A):
            st[2, i] = 0.5
            st[3, i] = prm[2]


@njit(inline="always")
def on_prompt(code, st, ist, prm, itab, prompt):
    if code == ORACLE:
        ist[1] = itab[prompt]
    elif code == HEURISTIC_T:
        ist[1] = min(int(prm[2]), int(prm[3]))
    elif code == HEDGESPEC:  # a new output: positions restart (pending censored losses dropped)
        ist[1] = 0
        ist[2] = 0


@njit(inline="always")
def select(code, A, st, ist, prm, itab, ftab, key, lane_key, g, tmp):
    """The arm of this round; ``g`` is the lane's round counter (its uniforms' counter)."""
    t = ist[0]
    if code == UCBSPEC:
        if t < A:
            return t
        c = 4.0 * math.log(max(t, 1))
        for i in range(A):  # row 1 caches sums/n and row 3 1 + 2 b: the same values numpy computes
            tmp[i] = st[1, i] + ftab[i] * math.sqrt(st[2, i] * (st[3, i] + c))
        return _argmax(tmp, A)  # a separate pass, so the loop above vectorises
    if code == EXP3SPEC:
        eta = prm[2] * math.sqrt(math.log(A) / ((t + 1.0) * A))
        _exp_weights(st, 1, 4, A, eta)
        return _categorical(st, 4, A, uniform3(key, lane_key, g, 0))
    if code == UCB1:
        if t < A:
            return t
        lt = 2 * math.log(max(t, 1))
        for i in range(A):
            n = st[0, i]
            tmp[i] = st[1, i] / n + prm[2] * math.sqrt(lt / n)
        return _argmax(tmp, A)
    if code == KLUCB:
        if t < A:
            return t
        tt = float(max(t, 2))
        num = math.log(tt) + prm[2] * math.log(math.log(tt))
        for i in range(A):
            n = max(st[0, i], 1.0)
            budget = num / n
            mean = min(max(st[1, i] / n, 0.0), 1.0)
            lo, hi = mean, 1.0
            for _ in range(40):
                mid = (lo + hi) / 2
                if _bern_kl(mean, mid) <= budget:
                    lo = mid
                else:
                    hi = mid
            tmp[i] = lo
        return _argmax(tmp, A)
    if code == THOMPSON:
        h = uniform_prefix(key, lane_key, g)
        for i in range(A):  # st[2] = posterior mean, st[3] = its scale (kept by ``update``)
            u = min(max(uniform_last(h, i), 1e-12), 1 - 1e-12)
            tmp[i] = st[2, i] + st[3, i] * _ndtri(u)
        return _argmax(tmp, A)
    if code == EPSGREEDY:
        eps = min(1.0, prm[2] * A / max(t, 1))
        if uniform3(key, lane_key, g, 0) < eps:
            return min(int(uniform3(key, lane_key, g, 1) * A), A - 1)
        for i in range(A):
            tmp[i] = st[1, i] / st[0, i] if st[0, i] > 0 else np.inf
        return _argmax(tmp, A)
    if code == EXP3IX:
        eta = math.sqrt(2 * math.log(A) / (A * (t + 1)))
        _exp_weights(st, 0, 1, A, eta)
        return _categorical(st, 1, A, uniform3(key, lane_key, g, 0))
    if code == TSALLIS:
        eta = 2 / math.sqrt(t + 1.0)
        m = st[0, 0]
        for i in range(1, A):
            m = min(m, st[0, i])
        lo, hi = m - 2 * math.sqrt(A) / eta, m - 2 / eta
        for _ in range(60):
            mid = (lo + hi) / 2
            s = 0.0
            for i in range(A):
                v = eta * (st[0, i] - mid)
                s += 4 / (v * v)
            if s < 1:
                lo = mid
            else:
                hi = mid
        x = (lo + hi) / 2
        s = 0.0
        for i in range(A):
            v = eta * (st[0, i] - x)
            st[1, i] = 4 / (v * v)
            s += st[1, i]
        for i in range(A):
            st[1, i] = st[1, i] / s
        return _categorical(st, 1, A, uniform3(key, lane_key, g, 0))
    if code == SWUCB:
        W = int(prm[2])
        for i in range(A):
            st[2, i] = 0.0
            st[3, i] = 0.0
        for j in range(W):  # window slots in slot order, as the numpy policy sums them
            a = int(st[1, j])
            if a >= 0:
                st[2, a] += 1.0
                st[3, a] += st[0, j]
        lw = prm[3] * math.log(max(min(t, W), 1))
        for i in range(A):
            n = st[2, i]
            tmp[i] = st[3, i] / n + math.sqrt(lw / n) if n > 0 else np.inf
        return _argmax(tmp, A)
    if code == HEURISTIC or code == HEURISTIC_T:
        return itab[ist[1]]
    if code == BANDITSPEC_CODE:
        oi = ist[1]
        if oi < 8:
            gi = (oi - 1) % 4
        else:
            tot = st[1, 0] + st[1, 1] + st[1, 2] + st[1, 3]
            bonus = math.sqrt(6.0 * math.log(oi) / tot)
            for i in range(4):
                tmp[i] = (st[0, i] / st[1, i] if st[1, i] > 0 else 0.0) + bonus
            gi = _argmax(tmp, 4)
        ist[2] = gi
        return itab[gi]
    if code == FIXED:
        return itab[0]
    if code == UNIFORM:
        return min(int(uniform3(key, lane_key, g, 0) * A), A - 1)
    if code == ORACLE:
        return ist[1]
    if code == STRUCTURED or code == SMARTSPEC:
        return _select_runlength(code, A, st, ist, prm, itab, ftab, tmp)
    # HEDGESPEC
    N = int(prm[3])
    if prm[5] == 0.0:  # hedge
        e = prm[2] if prm[2] > 0 else math.sqrt(8 * math.log(max(N, 2)) / max(t, 1))
        _exp_weights(st, 0, 2, N, e)
    else:
        _normalhedge(st, N)
    return itab[_categorical(st, 2, N, uniform3(key, lane_key, g, 0))]


@njit(inline="always")
def _select_runlength(code, A, st, ist, prm, itab, ftab, tmp):
    D, Km = int(prm[3]), int(prm[4])
    if code == STRUCTURED:
        lt = math.log(max(ist[0], 2))
        for d in range(D):  # optimistic survival S(j) into rows 2D..3D-1
            s = 1.0
            for j in range(Km):
                n = st[d, j]
                h = st[D + d, j] / n if n > 0 else 1.0
                b = prm[2] * math.sqrt(lt / n) if n > 0 else 1.0
                s = s * min(h + b, 1.0)
                st[2 * D + d, j] = s
        for i in range(A):
            d, k = itab[i], itab[A + i]
            if d < 0:
                tmp[i] = 1.0
            else:
                acc = 0.0
                for j in range(k):
                    acc += st[2 * D + d, j]
                tmp[i] = 1.0 + acc
        return _argmax(tmp, A)
    for i in range(A):  # SmartSpec: goodput with a running acceptance rate per drafter
        d, k = max(itab[i], 0), itab[A + i]
        succ, trials = 0.0, 0.0
        for j in range(Km):
            succ += st[D + d, j]
            trials += st[d, j]
        a = (succ + 0.5) / (trials + 1.0)
        tok = (1 - math.pow(a, float(k + 1))) / (1 - a) if itab[i] >= 0 else 1.0
        tmp[i] = tok / ftab[i]
    return _argmax(tmp, A)


@njit(inline="always")
def _normalhedge(st, N):
    """``simulator.policies.hedgespec.normalhedge_probs`` for one lane: regrets ``st[1]``, weights into ``st[2]``."""
    m, pos = 0.0, False
    for i in range(N):
        r = max(st[1, i], 0.0)
        m = max(m, r)
        pos = pos or r > 0
    if not pos:
        for i in range(N):
            st[2, i] = 1.0 / N
        return
    m = max(m, 1e-12)
    lo = math.log(m * m / (2 * (1 + math.log(N))) + 1e-300)
    hi = math.log(m * m / 2 + 1e-300) + 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        c = math.exp(mid)
        s = 0.0
        for i in range(N):
            r = max(st[1, i], 0.0)
            s += math.exp(min(r * r / (2 * c), 700.0))
        if s / N - np.e > 0:
            lo = mid
        else:
            hi = mid
    c = math.exp((lo + hi) / 2)
    top = -np.inf
    for i in range(N):
        r = max(st[1, i], 0.0)
        st[2, i] = math.log(max(r, 1e-300)) - math.log(c) + r * r / (2 * c) if r > 0 else -np.inf
        top = max(top, st[2, i])
    s = 0.0
    for i in range(N):
        st[2, i] = math.exp(st[2, i] - top) if st[1, i] > 0 else 0.0
        s += st[2, i]
    s = max(s, 1e-300)
    for i in range(N):
        st[2, i] = st[2, i] / s


@njit(inline="always")
def update(code, arm, r, A, st, ist, prm, itab, ftab):
    """Bandit feedback: reward ``r`` of the played arm."""
    glo, ghi = prm[0], prm[1]
    t = ist[0]
    ist[0] = t + 1
    if code == UCBSPEC:
        st[0, arm] += 1.0
        st[4, arm] += r
        n = st[0, arm]
        st[1, arm] = st[4, arm] / n
        st[2, arm] = (1 + n) / (n * n)
        st[3, arm] = 1.0 + 2.0 * math.log(A * math.sqrt(1 + n) / prm[2])
    elif code == EXP3SPEC:
        st[1, arm] += (ghi - r) / max(ghi - glo, 1e-12) / st[4, arm]
    elif code == UCB1 or code == KLUCB or code == THOMPSON or code == EPSGREEDY:
        st[0, arm] += 1
        st[1, arm] += (r - glo) / max(ghi - glo, 1e-12)
        if code == THOMPSON:  # only the pulled arm's posterior moves: select reads it
            st[2, arm] = (st[1, arm] + 0.5) / (st[0, arm] + 1)
            st[3, arm] = prm[2] / math.sqrt(st[0, arm] + 1)
    elif code == EXP3IX:
        gamma = math.sqrt(2 * math.log(A) / (A * (t + 1))) / 2
        st[0, arm] += (ghi - r) / max(ghi - glo, 1e-12) / (st[1, arm] + gamma)
    elif code == TSALLIS:
        st[0, arm] += (ghi - r) / max(ghi - glo, 1e-12) / st[1, arm]
    elif code == SWUCB:
        slot = t % int(prm[2])
        st[1, slot] = arm
        st[0, slot] = (r - glo) / max(ghi - glo, 1e-12)
    elif code == HEURISTIC or code == HEURISTIC_T:
        k = ist[1]
        new = k + 2 if r >= k + 1 else max(1, k - 1)
        ist[1] = min(new, int(prm[3]))
    elif code == BANDITSPEC_CODE:
        gi = ist[2]
        st[0, gi] += r
        st[1, gi] += 1
        ist[1] += 1
    elif code == STRUCTURED or code == SMARTSPEC:
        d, K = itab[arm], itab[A + arm]
        if d >= 0:
            D = int(prm[3])
            a = min(int(r) - 1, K)
            for j in range(1, min(a + 1, K) + 1):
                st[d, j - 1] += 1.0
            for j in range(1, a + 1):
                st[D + d, j - 1] += 1.0


@njit(inline="always")
def update_full(st, ist, prm, itab, F, prompt, pos, e, f):
    """HedgeSpec: positions ``pos .. pos+e-1`` were verified; release every position whose
    window is verified (``simulator.policies.hedgespec.HedgeSpec.update_full``).  ``F`` holds
    every expert's loss per (prompt, expert, position) (``adapters.expert_losses``); ``f`` is
    scratch for the experts' losses."""
    N, W = int(prm[3]), int(prm[4])
    ist[1] = max(ist[1], pos + e)
    while ist[2] + W <= ist[1]:
        t = ist[2]
        pf = 0.0
        for i in range(N):
            f[i] = F[prompt, i, t]
            pf += st[2, i] * f[i]
        for i in range(N):
            st[1, i] += pf - f[i]
            st[0, i] += f[i]
        ist[0] += 1
        ist[2] += 1
