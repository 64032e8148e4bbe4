"""Solvers for weights on the unit simplex, shared by the synthetic-control family.

Two problems recur in synthetic control methods and neither has a well-kept solver in
numpy/scipy that is both exact and fast enough to be called thousands of times:

1. **Regularised least squares on the simplex, by Frank-Wolfe** (:func:`fw_weights`), the
   solver of Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021, AER), Section 2.2 and
   Appendix (unit weights eq. 2.2-2.3, time weights eq. 2.4-2.5), as implemented in R
   ``synthdid`` (``sc.weight.fw`` / ``fw.step``): exact line search, stopping when the
   objective's decrease falls below ``min_decrease**2``, and the sparsification restart
   (:func:`sparsify`: weights below a quarter of the largest set to zero). The SDID
   point estimate is only reproducible to 1e-3 if this *algorithm* is followed, since the
   time-weight problem is nearly unregularised (zeta = 1e-6 sigma) and its minimiser is not
   unique in practice: the path the solver takes matters. Written here because no Python
   library exposes it; the Python ``synthdid`` port departs from R for SC.

2. **Quadratic programme on the simplex, exactly** (:func:`simplex_qp`):
   ``min_w ||A w - b||^2`` s.t. ``w >= 0, sum(w) = 1``, the inner problem of Abadie,
   Diamond & Hainmueller (2010, JASA), eq. (2)-(3), with ``A = V^{1/2} X0`` and
   ``b = V^{1/2} X1``. R ``Synth`` solves it with an interior-point method (``ipop``,
   margin 5e-4), scipy offers SLSQP (tolerance-driven, slow) and NNLS (no equality
   constraint). An active-set method in the style of Lawson & Hanson (1974, ch. 23),
   adapted to the simplex, terminates at the exact optimum (KKT conditions checked to
   ``tol``) after a few steps, and accepts a *warm start* (the previous support), which
   makes the nested optimisation over V -- thousands of QPs whose supports rarely change --
   fast. Exactness matters because the outer loss (pre-period MSPE as a function of V) is
   evaluated at the QP solution: an inexact inner solver makes that loss noisy and the
   outer search stops at spurious minima.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import daxpy as _daxpy
from scipy.linalg.blas import dscal as _dscal

#: Above this many weights, batched Frank-Wolfe problems are solved one at a time.
_BATCH_MAX_M = 512
#: A batch of Gram matrices this small is symmetrised in one pass (a temporary copy).
_SMALL_BATCH_BYTES = 2**23


def sparsify(v: np.ndarray) -> np.ndarray:
    """Zero the weights at or below a quarter of the largest and renormalise (R synthdid
    ``sparsify_function``).
    """
    v = np.array(v, dtype=float)
    v[v <= v.max() / 4.0] = 0.0
    return v / v.sum()


def sum_normalize(x: np.ndarray) -> np.ndarray:
    """``x / sum(x)``, or uniform weights when the sum is zero (R synthdid)."""
    x = np.asarray(x, dtype=float)
    s = x.sum()
    if s != 0:
        return x / s
    return np.full(len(x), 1.0 / len(x))


def fw_weights(
    Y: np.ndarray,
    zeta: float,
    *,
    intercept: bool = True,
    init: np.ndarray | None = None,
    min_decrease: float = 1e-3,
    max_iter: int = 1000,
) -> tuple[np.ndarray, np.ndarray | int]:
    """Frank-Wolfe for ``min_w zeta^2 ||w||^2 + ||A w - b||^2 / n`` on the simplex.

    Arkhangelsky et al. (2021), eq. (2.2)-(2.5), solved as in R ``synthdid``
    (``sc.weight.fw``): ``Y`` is ``n x (m + 1)``; its first ``m`` columns form ``A`` and its
    last column ``b``. With ``intercept`` each column is first demeaned (the free intercept
    ``omega_0`` / ``lambda_0`` of the paper is profiled out). Each iteration moves towards
    the vertex with the smallest gradient with an exact line search; iterations stop when
    the objective decreases by no more than ``min_decrease**2``.

    ``Y`` may carry a leading batch dimension ``(B, n, m + 1)``: the ``B`` problems (e.g.
    placebo replications) are solved together (:func:`_fw_batch`), each following exactly
    its own sequence of iterates and stopping on its own, which amortises the Python loop
    over the batch. With more than ``_BATCH_MAX_M`` weights the per-problem O(m) updates
    outweigh that saving and the batch's Gram matrices would not fit in memory together,
    so the problems are then solved one after another (:func:`_fw_single`, each holding
    one m x m Gram matrix at a time).

    In Gram form, with ``G = A'A + eta I`` (``eta = n zeta^2``) and ``c = A'b``, the scaled
    objective is ``f(x) = x'Gx - 2c'x + b'b = n * (zeta^2 |x|^2 + |Ax - b|^2 / n)``.
    Keeping ``h = Gx``, ``q = x'Gx`` and ``p = c'x`` up to date makes an iteration O(m) per
    problem: the exact line search along ``d = e_i - x`` needs
    ``d'(Gx - c) = (h_i - c_i) - (q - p)`` and ``d'Gd = G_ii - 2 h_i + q`` only.

    Parameters
    ----------
    Y : ndarray, shape (n, m + 1) or (B, n, m + 1)
    zeta : float
        Ridge penalty ``zeta`` (``eta = n zeta^2`` in the scaled objective).
    intercept : bool
        Demean the columns (free intercept).
    init : ndarray, shape (m,) or (B, m), optional
        Starting weights (uniform by default).
    min_decrease : float
        Stop when the objective decreases by no more than ``min_decrease**2``.
    max_iter : int
        Iteration cap.

    Returns
    -------
    weights : ndarray, shape (m,) or (B, m)
    n_iter : ndarray of int, shape () or (B,)
    """
    Y = np.asarray(Y, dtype=float)
    single = Y.ndim == 2
    if single:
        Y = Y[None]
    B, n, m1 = Y.shape
    m = m1 - 1
    if init is None:
        x = np.full((B, m), 1.0 / m)
    else:
        x = np.ascontiguousarray(
            np.broadcast_to(np.asarray(init, dtype=float), (B, m)), dtype=float
        ).copy()
    if intercept:
        Y = Y - Y.mean(axis=1, keepdims=True)
    else:
        # the weights sum to one, so a constant per row (here the target's) leaves
        # ``A w - b`` unchanged; without it the Gram matrices carry the outcome's level,
        # which drowned the differences at a level of 1e6 (Prop 99 + 1e6: SC moved 0.33)
        Y = Y - Y[..., -1:]
    eta = n * float(zeta) ** 2
    thresh = float(min_decrease) ** 2 * n  # work with n * objective
    if B == 1 or m > _BATCH_MAX_M:
        iters = np.zeros(B, dtype=int)
        for b in range(B):
            Mb = Y[b].T @ Y[b]
            Mb = 0.5 * (Mb + Mb.T)
            Gb = np.ascontiguousarray(Mb[:m, :m])
            Gb[np.diag_indices(m)] += eta
            x[b], iters[b] = _fw_single(
                Gb, Mb[:m, m].copy(), float(Mb[m, m]), x[b], thresh, max_iter
            )
        return (x[0], int(iters[0])) if single else (x, iters)
    iters = _fw_batch(*_batch_gram(Y, eta), x, thresh, max_iter)
    if single:
        return x[0], iters[0]
    return x, iters


def _batch_gram(Y: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``G = A'A + eta I`` (B x m x m), ``c = A'b``, ``b'b`` and ``diag(G)`` of each
    problem of the batch."""
    B, _, m1 = Y.shape
    m = m1 - 1
    M = Y.transpose(0, 2, 1) @ Y  # (B, m+1, m+1)
    # exactly symmetric (rows stand in for columns); with large matrices one problem at
    # a time, so that the temporaries hold one Gram matrix rather than B of them
    if M.nbytes <= _SMALL_BATCH_BYTES:
        M += M.transpose(0, 2, 1).copy()
        M *= 0.5
    else:
        for Mb in M:
            Mb += Mb.T.copy()
            Mb *= 0.5
    # c stays a strided view, as when it was a column of M: einsum's summation order
    # depends on the memory layout, and this keeps the iterates (and so every placebo
    # draw) bit for bit those of the earlier releases
    c = np.empty((B, m, 2))[:, :, 0]
    c[...] = M[:, :m, m]
    bb = M[:, m, m].copy()
    G = np.ascontiguousarray(M[:, :m, :m])
    del M
    Gdiag = np.diagonal(G, axis1=1, axis2=2).copy()
    Gdiag += eta  # the ridge term eta I, added to the diagonal in place
    G[:, np.arange(m), np.arange(m)] = Gdiag
    return G, c, bb, Gdiag


def _fw_buffers(
    G: np.ndarray, c: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stacked buffers of :func:`_fw_batch` at the start: ``hxc`` (``h = Gx``, ``x``
    and ``c``), and the scalar rows ``(q, h_i)``, ``(1 - s, 2s, p, x_i)``, ``(s, c_i)``
    with ``q = x'Gx`` and ``p = c'x`` filled in."""
    B, m = x.shape
    h = np.einsum("bij,bj->bi", G, x)
    hxc = np.empty((3, B, m))
    hxc[0], hxc[1], hxc[2] = h, x, c
    q_hi, by_one_s, by_step = np.empty((2, B)), np.empty((4, B)), np.empty((2, B))
    q_hi[0] = np.einsum("bi,bi->b", x, h)
    by_one_s[2] = np.einsum("bi,bi->b", c, x)
    return hxc, q_hi, by_one_s, by_step


def _fw_batch(
    G: np.ndarray,
    c: np.ndarray,
    bb: np.ndarray,
    Gdiag: np.ndarray,
    x: np.ndarray,
    thresh: float,
    max_iter: int,
) -> np.ndarray:
    """The batched Frank-Wolfe iterations (R ``fw.step`` for each problem); ``x`` (B x m)
    is overwritten with the solutions; returns each problem's iteration count.

    Each problem follows exactly the floating-point operations of one ``fw.step``
    (in the comments), so the iterates do not depend on the batch. The loop runs
    thousands of times on small arrays (Prop 99's placebos: 10,000 iterations on 200 x
    37), so it is bound by numpy calls: per-problem arrays live in stacked buffers
    (:func:`_fw_buffers`) whose views are taken once per set of active problems. Finished
    problems leave the buffers; the Gram stack stays whole, read through ``active``.
    """
    B, m = x.shape
    hxc, q_hi, by_one_s, by_step = _fw_buffers(G, c, x)
    iters = np.zeros(B, dtype=int)
    active = np.arange(B)
    G2 = G.reshape(B * m, m)  # row b*m + i is row i of problem b
    times_one_s, times_step, q_terms = np.empty((4, B)), np.empty((2, B)), np.empty((2, B))
    grad_buf, scale_buf, gii_buf = np.empty((B, m)), np.empty((2, B, m)), np.empty(B)
    bba = bb.copy()
    prev = np.full(B, np.inf)
    going = np.ones(B, dtype=bool)
    na = B
    t = 0
    add, subtract, multiply, divide, copyto = np.add, np.subtract, np.multiply, np.divide, np.copyto
    maximum, minimum, logical_not = np.maximum, np.minimum, np.logical_not
    count_nonzero = np.count_nonzero
    # den <= 0 divides too (that step is then set to 0, as R does without dividing)
    with np.errstate(divide="ignore", invalid="ignore"):
        while t < max_iter and na:
            # views of the active problems, fixed until one of them stops
            base, gbase = np.arange(na) * m, active * m
            H, HX, C = hxc[0], hxc[:2], hxc[2]
            h_flat, x_flat, c_flat = hxc[0].reshape(-1), hxc[1].reshape(-1), hxc[2].reshape(-1)
            grad, gii = grad_buf[:na], gii_buf[:na]
            scale_s, scale_o = scale_buf[0, :na], scale_buf[1, :na]
            q_hi_a, by_one_s_a, by_step_a = q_hi[:, :na], by_one_s[:, :na], by_step[:, :na]
            q, hi = q_hi_a
            one_s, two_s, p, xi = by_one_s_a
            step, ci = by_step_a
            t_one_s, t_step, t_q = times_one_s[:, :na], times_step[:, :na], q_terms[:, :na]
            oo_2so, op, x_o = t_one_s[:2], t_one_s[2], t_one_s[3]
            ss, s_c = t_step
            q_a, q_b = t_q
            step_col = step[:, None]
            # bound methods: one attribute lookup per set of active problems
            argmin_rows, put_x = grad.argmin, x_flat.put
            take_h, take_x, take_c, take_gii = h_flat.take, x_flat.take, c_flat.take, Gdiag.take
            while t < max_iter:
                t += 1
                subtract(H, C, out=grad)
                i = argmin_rows(1)  # the vertex with the smallest gradient
                flat = base + i
                gidx = gbase + i
                take_h(flat, out=hi, mode="clip")
                take_x(flat, out=xi, mode="clip")
                take_c(flat, out=ci, mode="clip")
                take_gii(gidx, out=gii, mode="clip")
                # exact line search along e_i - x: num = (h_i - c_i) - (q - p),
                # den = G_ii - 2 h_i + q, step = -num / den clipped to [0, 1] (-num is
                # formed as (q - p) - (h_i - c_i): rounding is symmetric, the same bits)
                den = (gii - (hi + hi)) + q
                divide((q - p) - (hi - ci), den, out=step)
                maximum(step, 0.0, out=step)
                minimum(step, 1.0, out=step)
                # R fw.step: no move when x already is the vertex e_i or den <= 0
                still = den > 0.0
                logical_not(still, out=still)
                still |= xi >= 1.0
                copyto(step, 0.0, where=still)
                subtract(1.0, step, out=one_s)
                add(step, step, out=two_s)
                # x <- (1 - s) x, h <- (1 - s) h + s G_i (G symmetric: row i is column i);
                # s and 1 - s spread over the rows once, so both multiplies run flat
                copyto(scale_s, step_col)
                subtract(1.0, scale_s, out=scale_o)
                multiply(HX, scale_o, out=HX)
                gi = G2.take(gidx, axis=0)
                multiply(gi, scale_s, out=gi)
                add(H, gi, out=H)
                # q <- (1-s)(1-s) q + (2s)(1-s) h_i + s s G_ii, p <- (1-s) p + s c_i,
                # x_i <- (1-s) x_i + s
                multiply(by_one_s_a, one_s, out=t_one_s)
                multiply(by_step_a, step, out=t_step)
                multiply(oo_2so, q_hi_a, out=t_q)
                add(q_a, q_b, out=q)
                q += ss * gii
                add(op, s_c, out=p)
                put_x(flat, x_o + step)
                val = (q - (p + p)) + bba
                # R: iterate while t < 2 or vals[t-1] - vals[t] > min.decrease^2.
                going = prev - val > thresh
                prev = val
                if t >= 2 and count_nonzero(going) < na:
                    break
            else:
                break  # max_iter reached
            # some problems stopped: record them and drop them from the buffers
            done = ~going
            x[active[done]] = hxc[1][done]
            iters[active[done]] = t
            active = active[going]
            hxc = hxc.compress(going, axis=1)
            na = active.size
            q_hi[0, :na] = q[going]
            by_one_s[2, :na] = p[going]
            bba, prev = bba[going], prev[going]
    if na:
        x[active] = hxc[1]
        iters[active] = t
    return iters


def _fw_single(
    G: np.ndarray, c: np.ndarray, bb: float, x: np.ndarray, thresh: float, max_iter: int
) -> tuple[np.ndarray, int]:
    """One Frank-Wolfe problem in Gram form with scalar bookkeeping in Python floats
    (the iterates of the batched loop, with far less per-iteration overhead).

    ``G`` is overwritten. The gradient ``g = Gx - c`` is kept instead of ``h = Gx``:
    with the rows of ``G`` shifted by ``c``, the move towards vertex ``i`` is
    ``g <- (1 - s) g + s (G_i - c)``, two in-place BLAS calls (``dscal``, ``daxpy``);
    ``x`` is kept as ``beta * xt`` so that its update is one entry. Both are the same
    arithmetic up to rounding (1e-14 in the weights on a 1,000-donor problem). The
    scalars, ``xt`` included, are Python floats (a list) and the rows of ``G`` are views
    taken once: numpy scalars and per-iteration indexing would cost more than the O(m)
    BLAS work on a small problem.
    """
    x = np.array(x, dtype=float)
    g = G @ x
    q = float(x @ g)
    p = float(c @ x)
    g -= c
    Gd = np.diagonal(G).tolist()
    cl = c.tolist()
    G -= c  # row i now holds G_i - c
    rows = list(G)
    xt = x.tolist()
    beta = 1.0
    prev = np.inf
    t = 0
    while t < max_iter:
        t += 1
        i = int(g.argmin())
        gi = g.item(i)
        ci = cl[i]
        hi = gi + ci
        gii = Gd[i]
        num = gi - (q - p)
        den = gii - 2.0 * hi + q
        if beta * xt[i] >= 1.0 or not den > 0:
            step = 0.0
        else:
            step = min(max(-num / den, 0.0), 1.0)
        if step > 0.0:
            one_s = 1.0 - step
            if beta * one_s > 1e-150:
                beta *= one_s
                xt[i] += step / beta
            else:  # a full step (or a vanishing scale): materialise x
                f = beta * one_s
                xt = [v * f for v in xt]
                xt[i] += step
                beta = 1.0
            g = _dscal(one_s, g)
            g = _daxpy(rows[i], g, a=step)
            q = one_s * one_s * q + 2.0 * step * one_s * hi + step * step * gii
            p = one_s * p + step * ci
        val = q - 2.0 * p + bb
        if t >= 2 and not (prev - val > thresh):
            break
        prev = val
    return np.array(xt) * beta, t


def simplex_qp(
    A: np.ndarray,
    b: np.ndarray,
    *,
    support: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimiser of ``||A w - b||^2`` over the unit simplex (active-set method).

    Lawson & Hanson's NNLS algorithm (1974, Alg. 23.10) with the equality ``sum(w) = 1``
    carried in every subproblem: the passive set ``P`` holds the positive weights; on
    ``P`` the equality-constrained least-squares problem is solved through its KKT
    system; a variable enters when its gradient is below the common gradient on ``P``
    (negative reduced cost, the KKT multiplier of ``w_j >= 0``); an infeasible subproblem
    solution triggers a step back to the boundary (Lawson & Hanson's inner loop).

    Parameters
    ----------
    A : ndarray, shape (k, J)
    b : ndarray, shape (k,)
    support : ndarray of int, optional
        Warm-start passive set (e.g. the support found for a nearby ``V``).
    tol : float
        Relative tolerance on the reduced costs.
    max_iter : int
        Cap on outer iterations (each adds a variable).

    Returns
    -------
    w : ndarray, shape (J,)
    support : ndarray of int
        Indices with positive weight.
    """
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    # exact on the simplex (sum(w) = 1): each row less the target's value, so the Gram
    # matrix and the tolerance work at the rows' spread, not their level
    A, b = A - b[:, None], np.zeros_like(b)
    return simplex_qp_gram(A.T @ A, A.T @ b, support=support, tol=tol, max_iter=max_iter)


def simplex_qp_gram(
    H: np.ndarray,
    c: np.ndarray,
    *,
    support: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simplex_qp` in Gram form: ``min 1/2 w'Hw - c'w`` on the simplex
    (``H = A'A``, ``c = A'b``), for callers that update ``H`` cheaply.
    """
    J = H.shape[0]
    if J == 1:
        return np.ones(1), np.zeros(1, dtype=int)
    scale = max(float(np.abs(H).max()), float(np.abs(c).max()), 1e-300)
    eps = tol * scale

    def solve_on(P: list[int]) -> np.ndarray:
        # KKT of min 1/2 z'H_PP z - c_P'z s.t. 1'z = 1:  [H_PP 1; 1' 0] [z; mu] = [c_P; 1].
        p = len(P)
        idx = np.asarray(P)
        K = np.ones((p + 1, p + 1))
        K[:p, :p] = H[idx[:, None], idx]
        K[p, p] = 0.0
        rhs = np.append(c[idx], 1.0)
        try:
            sol = np.linalg.solve(K, rhs)
        except np.linalg.LinAlgError:
            sol = None
        # A (near-)singular H_PP (more donors in P than predictors) can pass solve with
        # garbage; fall back to the minimum-norm solution then.
        if sol is None or not np.abs(K @ sol - rhs).max() <= 1e-9 * (scale + 1.0):
            sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
        return sol[:p]

    def face_optimum(P: list[int], w: np.ndarray) -> list[int]:
        # Lawson-Hanson inner loop: from a feasible w supported on P, move towards the
        # optimum on the face P, dropping variables that hit zero, until it is interior.
        for _inner in range(J + 1):
            z = solve_on(P)
            if np.all(z > 0):
                w[:] = 0.0
                w[P] = z
                return P
            wp = w[P]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(z <= 0, wp / (wp - z), np.inf)
            alpha = min(max(float(np.min(ratios)), 0.0), 1.0)
            newp = wp + alpha * (z - wp)
            keep = [p for p, v in zip(P, newp, strict=True) if v > 1e-14]
            if not keep:
                keep = [P[int(np.argmax(newp))]]
            w[:] = 0.0
            w[P] = np.maximum(newp, 0.0)
            kept = w[keep]
            w[:] = 0.0
            w[keep] = kept / kept.sum()
            P = keep
        return P

    # Start: the warm-start support (from a nearby problem) with a feasible point on it,
    # else the best single vertex.
    w = np.zeros(J)
    P: list[int] = []
    if support is not None and len(support):
        P = sorted({int(j) for j in support if 0 <= int(j) < J})
        if P:
            z = solve_on(P)
            if np.all(z > 0):
                # Fast path: the warm support is still optimal when no reduced cost is negative.
                w[P] = z
                g = H @ w - c
                red = g - float(np.mean(g[P]))
                red[P] = np.inf
                if red.min() >= -eps:
                    return w, np.asarray(P)
            else:
                z = np.maximum(z, 0.0)
                w[P] = z / z.sum() if z.sum() > 0 else 1.0 / len(P)
                P = face_optimum(P, w)
    if not P:
        # f(e_j) = H_jj / 2 - c_j (+ const)
        j0 = int(np.argmin(0.5 * np.diag(H) - c))
        P = [j0]
        w[j0] = 1.0

    mask = np.ones(J, dtype=bool)
    for _ in range(max_iter):
        g = H @ w - c  # gradient of 1/2 w'Hw - c'w
        gP = float(np.mean(g[P]))
        mask[:] = True
        mask[P] = False
        if not mask.any():
            break
        red = np.where(mask, g - gP, np.inf)
        j = int(np.argmin(red))
        if red[j] >= -eps:
            break  # KKT: no variable outside P with a negative reduced cost
        P = face_optimum(sorted([*P, j]), w)
    w = np.maximum(w, 0.0)
    w /= w.sum()
    return w, np.flatnonzero(w > 0)
