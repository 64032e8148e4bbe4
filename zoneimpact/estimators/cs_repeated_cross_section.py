"""Callaway & Sant'Anna (2021) ATT(g,t) from repeated cross-sections, with sampling weights.

Method
------
Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple time
periods", *J. Econometrics* 225(2) (CS), Section 4.2 (repeated cross-sections), with the
2x2 estimators of Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust
difference-in-differences estimators", *J. Econometrics* 219(1) (SZ), Section 3.2:

* ``"reg"``: outcome regression for repeated cross-sections (SZ eq. 2.2 adapted;
  R ``DRDID::reg_did_rc``): OLS of ``Y`` on ``X`` among controls in each period.
* ``"ipw"``: standardised (Hajek) IPW for repeated cross-sections (SZ eq. 2.4 normalised;
  ``DRDID::std_ipw_did_rc``), logit propensity score of ``1{G=g}`` on ``X``.
* ``"dr"`` (default, as R ``did``): the locally efficient doubly robust estimator
  ``tau^{dr,rc}_2`` (SZ eq. 3.4; ``DRDID::drdid_rc``), with outcome regressions in all four
  group-period cells, including its efficiency correction terms.

Without covariates all three use an intercept only (they then equal the difference of
weighted mean changes). Each observation (row) is its own sampling unit: an ATT(g,t)
uses the rows of cohort ``g`` and of the comparison group observed in ``t`` and in the
base period; ``post = 1{period = t}``. Covariates enter at each row's own value.

**Sampling weights** (R ``did`` ``weightsname``): normalised to mean one over the sample;
they weight the logit, the regressions and the means (SZ with ``i_weights``, renormalised
within each 2x2 comparison as ``DRDID`` does), and the cohort shares ``p_g`` of the
aggregations.

**Influence functions and SEs**: each 2x2 influence function (SZ Appendix) is scaled by
``n / n_gt`` (rows in the sample over rows in the comparison), so
``se = sqrt(sum_i psi_i^2) / n`` over rows; aggregations follow
:mod:`zoneimpact.estimators._gt_aggregate` (CS Section 3 with the estimated-weights term).
Base period ``"varying"`` or ``"universal"``, comparison ``never_treated`` or
``not_yet_treated`` and ``anticipation`` follow R ``did`` exactly as the panel estimator
does.

Input
-----
A :class:`~zoneimpact.panel.Panel` in which each row is one observation: build it with
``Panel.from_frame(df, unit=<row or respondent id>, time=..., cohort=<the cohort of the
observation's area>, outcomes=..., covariates=[..., <weight column>])``. A respondent id
appears once per period at most (the Panel refuses duplicates); ids that recur across
periods are *not* linked (that is the repeated cross-section assumption). The panel need
not be balanced. The sampling weight is a covariate column named by ``weights``.

Why by hand: the weighted logit and the four weighted regressions per cell are a few
lines of numpy each, and the influence functions need their linear representations,
which statsmodels does not return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import EstimationError, PanelError, SpecError
from ..inference.bootstrap import bootstrap_se, multiplier_draws, sup_t_critical
from ..panel import Panel, _v
from ..parallel import as_generator
from ..results import (
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_names,
)
from ._cells import (
    Cell,
    CellFit,
    aggregate_cells,
    att_gt_frame,
    check_aggregations,
    defined_se,
    estimate_cells,
    group_time_cells,
    warn_failures,
)
from ._gt_aggregate import AGGREGATIONS, Aggregated, terms_table, warn_negative_two_way
from ._influence_results import InfluenceBlocks, InfluenceResult
from ._scale import scale_equivariant
from .callaway_santanna import _standard

__all__ = ["CSRepeatedCrossSectionResult", "fit"]

_CONTROL = {"never_treated": "never_treated", "not_yet_treated": "not_yet_treated"}
_TRIM_LEVEL = 0.995  # DRDID: controls with a propensity score >= 0.995 get no weight
_PS_CLIP = 1e-6  # DRDID clips fitted scores to [1e-6, 1 - 1e-6]
_OVERLAP = 0.999  # R did: a score reaching 0.999 makes the cell NA


@dataclass(frozen=True)
class CSRepeatedCrossSectionResult(InfluenceResult):
    """Result of :func:`fit`: the aggregated terms plus the group-time effects.

    ``with_inference("analytic" | "bootstrap", cluster=...)`` re-sums the kept
    observation-level influence functions (CS 2021 Section 4 / Algorithm 1) by any
    column of the data, a Series by unit id, or two columns, without refitting.

    Attributes
    ----------
    att_gt : DataFrame
        One row per ATT(g,t): ``cohort``, ``time``, ``event_time``, ``base_period``,
        ``estimate``, ``se``, ``n_obs`` (rows in the 2x2 comparison).
    influence : ndarray (n_rows, n_cells)
        Influence functions of the ATT(g,t), rows in ``panel.data`` order (kept rows).
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "att_gt": {"estimate": 1, "se": 1},
        "influence": 1,
        "blocks": 1,
    }
    ARTIFACTS: ClassVar[tuple[str, ...]] = ("att_gt",)
    INFERENCE_METHODS: ClassVar[tuple[str, ...]] = ("analytic", "bootstrap")

    att_gt: pd.DataFrame = field(default_factory=pd.DataFrame)
    influence: np.ndarray | None = None

    def _reinferred(
        self,
        vcov: np.ndarray,
        col_var: np.ndarray,
        labels: tuple[np.ndarray, ...],
        info: dict[str, Any],
        method: str,
        boot: dict[str, Any],
    ) -> CSRepeatedCrossSectionResult:
        assert self.blocks is not None and self.blocks.amat is not None
        terms, cells, amat = self.terms, self.att_gt, self.blocks.amat
        se, cell_se = defined_se(cells, amat, vcov, col_var, two_way=len(labels) > 1)
        if len(labels) > 1:  # past _reinferred and with_inference
            warn_negative_two_way(terms["term"], np.diag(vcov), 3)
        agg = Aggregated(
            list(terms["term"]),
            terms["estimate"].to_numpy(float),
            amat,
            self.blocks.psi,
            vcov,
            se,
            cell_se,
        )
        table, crit_event = terms_table(agg), None
        if method == "bootstrap":
            table, cell_se, crit_event = _bootstrap(
                table,
                agg,
                labels[0] if labels else None,
                len(cells),
                order=_row_order(self.blocks.panel, self.blocks.frame, self.outcome),
                alpha=self.alpha,
                n_boot=check_int(boot["n_boot"], "n_boot", minimum=2),
                rng=as_generator(boot["rng"]),
                n_jobs=boot["n_jobs"],
                boot_weights=check_choice(
                    boot["boot_weights"], "boot_weights", ("rademacher", "mammen")
                ),
            )
        boot_on = method == "bootstrap"
        info.update(
            se_type="multiplier bootstrap" if boot_on else "analytic influence function",
            n_boot=int(boot["n_boot"]) if boot_on else 0,
            crit_event=crit_event,
        )
        cells = cells.assign(se=cell_se)
        return replace(self, terms=table, vcov=vcov, att_gt=cells, info=info)


class _Overlap(ArithmeticError):
    pass


# ------------------------------------------------------------------- weighted pieces
def _check_trimmed(trim: np.ndarray, iw: np.ndarray, d: np.ndarray, post: np.ndarray) -> None:
    """Each treatment/period group needs positive weight after DRDID's trimming; when all
    controls of a period are trimmed their mean is 0/0 and the cell fails (DRDID stops with
    "Each required treatment/period group must have positive weight after trimming")."""
    for a, p in ((0, 0), (0, 1), (1, 0), (1, 1)):
        grp = (d == a) & (post == p)
        if not (trim * iw)[grp].sum() > 0:
            who = "control" if a == 0 else "treated"
            when = "base" if p == 0 else "current"
            raise _Overlap(
                f"all {int(grp.sum())} {who} observation(s) of the {when} period have a "
                f"propensity score >= {_TRIM_LEVEL} and are trimmed (no weight left)"
            )


def _logit(x: np.ndarray, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logit MLE (Newton-Raphson): clipped scores and the ALR ``score @ H^-1 n``."""
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = special.expit(x @ beta)
        hess = (x * (w * p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(hess, x.T @ (w * (d - p)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12 * (1 + np.max(np.abs(beta))):
            break
    p = special.expit(x @ beta)
    if p.max() >= _OVERLAP:
        raise _Overlap(f"propensity score reaches {p.max():.4f} (overlap violated)")
    p = np.clip(p, _PS_CLIP, 1 - _PS_CLIP)
    hess = (x * (w * p * (1 - p))[:, None]).T @ x
    alr = ((w * (d - p))[:, None] * x) @ (np.linalg.inv(hess) * len(d))
    return p, alr


def _wols(
    y: np.ndarray, x: np.ndarray, w: np.ndarray, sub: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS on the rows ``sub``: fitted values for all rows and the ALR of the
    coefficients (``w 1{sub} e x' (E[w 1{sub} x x'])^{-1}``, SZ Appendix)."""
    ws = w * sub
    gram = (x * ws[:, None]).T @ x / len(y)
    if sub.sum() < x.shape[1] or np.linalg.cond(gram) > 1 / np.finfo(float).eps:
        raise np.linalg.LinAlgError("singular regression among too few observations")
    coef = np.linalg.solve(gram * len(y), (x * ws[:, None]).T @ y)
    fitted = x @ coef
    alr = ((ws * (y - fitted))[:, None] * x) @ np.linalg.inv(gram)
    return fitted, alr


def _rc_reg(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD for repeated cross-sections (``DRDID::reg_did_rc``)."""
    fit_pre, alr_pre = _wols(y, x, iw, (d == 0) & (post == 0))
    fit_post, alr_post = _wols(y, x, iw, (d == 0) & (post == 1))
    w_tpre, w_tpost, w_c = iw * d * (1 - post), iw * d * post, iw * d
    eta_tpre = np.mean(w_tpre * y) / w_tpre.mean()
    eta_tpost = np.mean(w_tpost * y) / w_tpost.mean()
    eta_c = np.mean(w_c * (fit_post - fit_pre)) / w_c.mean()
    inf_treat = (w_tpost * (y - eta_tpost)) / w_tpost.mean() - (
        w_tpre * (y - eta_tpre)
    ) / w_tpre.mean()
    m = np.mean(w_c[:, None] * x, axis=0)
    inf_c = (w_c * (fit_post - fit_pre - eta_c) + alr_post @ m - alr_pre @ m) / w_c.mean()
    return float(eta_tpost - eta_tpre - eta_c), inf_treat - inf_c


def _rc_ipw(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[float, np.ndarray]:
    """Standardised IPW DiD for repeated cross-sections (``DRDID::std_ipw_did_rc``)."""
    ps, alr_ps = _logit(x, d, iw)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    _check_trimmed(trim, iw, d, post)
    odds = ps / (1 - ps)
    ws = {
        "tpre": trim * iw * d * (1 - post),
        "tpost": trim * iw * d * post,
        "cpre": trim * iw * odds * (1 - d) * (1 - post),
        "cpost": trim * iw * odds * (1 - d) * post,
    }
    att_k = {key: np.mean(w * y) / w.mean() for key, w in ws.items()}
    inf = {key: ws[key] * (y - att_k[key]) / ws[key].mean() for key in ws}
    m_pre = np.mean((ws["cpre"] * (y - att_k["cpre"]))[:, None] * x, 0) / ws["cpre"].mean()
    m_post = np.mean((ws["cpost"] * (y - att_k["cpost"]))[:, None] * x, 0) / ws["cpost"].mean()
    inf_c = inf["cpost"] - inf["cpre"] + alr_ps @ (m_post - m_pre)
    att = (att_k["tpost"] - att_k["tpre"]) - (att_k["cpost"] - att_k["cpre"])
    return float(att), inf["tpost"] - inf["tpre"] - inf_c


def _rc_dr(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, iw: np.ndarray
) -> tuple[float, np.ndarray]:
    """Locally efficient DR DiD for repeated cross-sections (SZ eq. 3.4; ``DRDID::drdid_rc``)."""
    ps, alr_ps = _logit(x, d, iw)
    trim = np.where(d == 1, 1.0, (ps < _TRIM_LEVEL).astype(float))
    _check_trimmed(trim, iw, d, post)
    c_pre, alr_c_pre = _wols(y, x, iw, (d == 0) & (post == 0))
    c_post, alr_c_post = _wols(y, x, iw, (d == 0) & (post == 1))
    t_pre, alr_t_pre = _wols(y, x, iw, (d == 1) & (post == 0))
    t_post, alr_t_post = _wols(y, x, iw, (d == 1) & (post == 1))
    c_fit = post * c_post + (1 - post) * c_pre
    odds = ps / (1 - ps)
    w_tpre = trim * iw * d * (1 - post)
    w_tpost = trim * iw * d * post
    w_cpre = trim * iw * odds * (1 - d) * (1 - post)
    w_cpost = trim * iw * odds * (1 - d) * post
    w_d, w_dt1, w_dt0 = trim * iw * d, trim * iw * d * post, trim * iw * d * (1 - post)
    r = y - c_fit

    def piece(w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
        eta = w * v / w.mean()
        return eta, float(eta.mean())

    e_tpre, a_tpre = piece(w_tpre, r)
    e_tpost, a_tpost = piece(w_tpost, r)
    e_cpre, a_cpre = piece(w_cpre, r)
    e_cpost, a_cpost = piece(w_cpost, r)
    e_dpost, a_dpost = piece(w_d, t_post - c_post)
    e_dt1, a_dt1 = piece(w_dt1, t_post - c_post)
    e_dpre, a_dpre = piece(w_d, t_pre - c_pre)
    e_dt0, a_dt0 = piece(w_dt0, t_pre - c_pre)
    att = (a_tpost - a_tpre) - (a_cpost - a_cpre) + (a_dpost - a_dt1) - (a_dpre - a_dt0)

    def mean_x(v: np.ndarray) -> np.ndarray:
        return np.mean(v[:, None] * x, axis=0)

    inf_treat = (
        (e_tpost - w_tpost * a_tpost / w_tpost.mean())
        - (e_tpre - w_tpre * a_tpre / w_tpre.mean())
        + alr_c_post @ (-mean_x(w_tpost * post) / w_tpost.mean())
        + alr_c_pre @ (-mean_x(w_tpre * (1 - post)) / w_tpre.mean())
    )
    mom_ps = (
        mean_x(w_cpost * (r - a_cpost)) / w_cpost.mean()
        - mean_x(w_cpre * (r - a_cpre)) / w_cpre.mean()
    )
    inf_cont = (
        (e_cpost - w_cpost * a_cpost / w_cpost.mean())
        - (e_cpre - w_cpre * a_cpre / w_cpre.mean())
        + alr_ps @ mom_ps
        + alr_c_post @ (-mean_x(w_cpost * post) / w_cpost.mean())
        + alr_c_pre @ (-mean_x(w_cpre * (1 - post)) / w_cpre.mean())
    )
    inf_eff = (
        (e_dpost - w_d * a_dpost / w_d.mean())
        - (e_dt1 - w_dt1 * a_dt1 / w_dt1.mean())
        - (e_dpre - w_d * a_dpre / w_d.mean())
        + (e_dt0 - w_dt0 * a_dt0 / w_dt0.mean())
    )
    mom_post = mean_x(w_d / w_d.mean() - w_dt1 / w_dt1.mean())
    mom_pre = mean_x(w_d / w_d.mean() - w_dt0 / w_dt0.mean())
    inf_or = (alr_t_post - alr_c_post) @ mom_post - (alr_t_pre - alr_c_pre) @ mom_pre
    return float(att), inf_treat - inf_cont + inf_eff + inf_or


_ESTIMATORS: dict[str, Callable[..., tuple[float, np.ndarray]]] = {
    "reg": _rc_reg,
    "ipw": _rc_ipw,
    "dr": _rc_dr,
}


# ----------------------------------------------------------------------- the steps
class _Sample(NamedTuple):
    """The observations with an outcome, as arrays (rows in ``panel.data`` order)."""

    frame: pd.DataFrame
    y: np.ndarray
    time: np.ndarray
    cohort: np.ndarray  # inf: never-treated group
    x: np.ndarray  # intercept and covariates
    w: np.ndarray  # sampling weights normalised to mean one (ones without weights)
    n_dropped: int  # rows without the outcome


def _check_options(panel: Panel, **options: Any) -> dict[str, Any]:
    """The options of :func:`fit`, checked once."""
    opt = {
        "cg": check_choice(options["control_group"], "control_group", tuple(_CONTROL)),
        "est_method": check_choice(options["est_method"], "est_method", ("dr", "ipw", "reg")),
        "base_period": check_choice(
            options["base_period"], "base_period", ("varying", "universal")
        ),
        "anticipation": check_int(options["anticipation"], "anticipation", minimum=0),
        "aggs": check_aggregations(options["aggregations"]),
        "covs": check_names(options["covariates"], "covariates"),
        "bootstrap": check_bool(options["bootstrap"], "bootstrap"),
        "n_boot": check_int(options["n_boot"], "n_boot", minimum=2),
        "boot_weights": check_choice(
            options["boot_weights"], "boot_weights", ("rademacher", "mammen")
        ),
    }
    extra = [c for c in (options["weights"], options["cluster"]) if c is not None]
    for c in [*opt["covs"], *extra]:
        if c not in panel.covariates:
            raise SpecError(
                f"Column {c!r} is not a covariate of the panel (covariates: "
                f"{list(panel.covariates)}); add it to covariates= when building the Panel."
            )
    return opt


def _sampling_weights(df: pd.DataFrame, weights: str | None) -> np.ndarray:
    """Sampling weights of the rows, normalised to mean one (R ``did``)."""
    if weights is None:
        return np.ones(len(df))
    wraw = df[weights].to_numpy(float)
    bad = ~np.isfinite(wraw) | (wraw < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PanelError(
            f"Sampling weight column {weights!r} must be finite and >= 0; unit "
            f"{_v(df['unit'].iloc[i])!r}, period {_v(df['time'].iloc[i])!r} has "
            f"{_v(wraw[i])!r}."
        )
    if wraw.sum() <= 0:
        raise PanelError(f"Sampling weight column {weights!r} is zero for every observation.")
    return wraw / wraw.mean()


def _sample(panel: Panel, outcome: str, covs: list[str], weights: str | None, cg: str) -> _Sample:
    """The rows with an outcome; covariates must be observed on them, and comparisons
    with never-treated groups need some."""
    data = panel.data
    keep = data[outcome].notna().to_numpy()
    df = data.loc[keep]
    w = _sampling_weights(df, weights)
    tvec = df["time"].to_numpy()
    # centred and scaled as in panel CS (every regression and propensity score has an
    # intercept, so nothing moves): _wols judges singularity by the uncentred design's
    # condition number, which a covariate's mean alone had pushed past 1/eps (lpop + 9000
    # left 4 of mpdta's 12 cells unestimated, a breaker's check in session 21)
    x_all = np.column_stack([np.ones(len(df))] + [_standard(df[c].to_numpy(float)) for c in covs])
    if covs and not np.all(np.isfinite(x_all)):
        i, j = np.argwhere(~np.isfinite(x_all))[0]
        raise PanelError(
            f"Covariate {covs[j - 1]!r} is missing for unit {_v(df['unit'].iloc[i])!r} in "
            f"period {_v(tvec[i])!r}; impute it or drop the row."
        )
    if cg == "never_treated" and np.isfinite(df["cohort"].to_numpy(float)).all():
        raise EstimationError(
            "control_group='never_treated' but no observation is in a never-treated group; "
            "use control_group='not_yet_treated'."
        )
    return _Sample(
        frame=df,
        y=df[outcome].to_numpy(float),
        time=tvec,
        cohort=df["cohort"].to_numpy(float),
        x=x_all,
        w=w,
        n_dropped=int((~keep).sum()),
    )


def _rc_cell(
    cell: Cell,
    sample: _Sample,
    periods: np.ndarray,
    cg: str,
    anticipation: int,
    est_fn: Callable[..., tuple[float, np.ndarray]],
) -> CellFit:
    """ATT(g,t) from the rows of cohort ``g`` and of the comparison group observed in
    ``t`` or in the base period (CS 2021 Section 4.2), by the SZ 2020 RC estimator; the
    influence function is scaled by ``n / n_gt``."""
    g, c, b = cell.cohort, cell.t, cell.base
    gvec, tvec, w = sample.cohort, sample.time, sample.w
    treat = gvec == g
    if cg == "never_treated":
        ctrl = ~np.isfinite(gvec)
    else:
        cutoff = periods[max(c, b)] + anticipation
        ctrl = ~np.isfinite(gvec) | ((gvec > cutoff) & (gvec != g))
    sub = (treat | ctrl) & np.isin(tvec, [periods[c], periods[b]])
    post = (tvec[sub] == periods[c]).astype(float)
    d = treat[sub].astype(float)
    wsub = w[sub]
    # each of the four group-period cells needs observations with positive weight
    cnt = [wsub[(d == a) & (post == p)].sum() for a in (0, 1) for p in (0, 1)]
    if min(cnt) <= 0:
        return CellFit(np.nan, None, 0, (f"({g:g},{periods[c]}) an empty group-period cell",))
    iw = wsub / wsub.mean()
    try:
        att, inf = est_fn(sample.y[sub], post, d, sample.x[sub], iw)
    except (np.linalg.LinAlgError, _Overlap) as exc:
        return CellFit(np.nan, None, 0, (f"({g:g},{periods[c]}) {exc}",))
    n = len(sample.y)
    col = np.zeros(n)
    col[sub] = (n / sub.sum()) * inf
    return CellFit(att, col, int(sub.sum()))


def _cluster_labels(sample: _Sample, cluster: str | None) -> np.ndarray | None:
    """Cluster label of each row (None: each row is its own cluster)."""
    if cluster is None:
        return None
    labels = sample.frame[cluster].to_numpy()
    if pd.isna(labels).any():
        i = int(np.flatnonzero(pd.isna(labels))[0])
        raise PanelError(
            f"Cluster column {cluster!r} is missing for unit "
            f"{_v(sample.frame['unit'].iloc[i])!r}, period {_v(sample.time[i])!r}."
        )
    return labels


def _row_order(panel: Panel | None, frame: pd.DataFrame | None, outcome: str) -> np.ndarray | None:
    """Positions of the sample's rows in an order fixed by the data, not the labels: their
    units in :meth:`Panel.canonical_order`, then by period (a unit has one row per period
    at most). The sample's own order follows the unit labels (``panel.data`` is sorted by
    unit), so drawing over it let a renaming of the units move the bootstrap under the same
    seed (reversed names: se[att] 39.07 -> 41.63; by region, se[calendar:2007] 14.32 ->
    21.31; a breaker's check). None (the sample's order) without a panel."""
    if panel is None or frame is None:
        return None
    units = frame["unit"].to_numpy()
    canon = panel.canonical_order(pd.unique(units), outcome)
    rank = pd.Index(canon).get_indexer(units)
    return np.lexsort([frame["time"].to_numpy(), rank])


def _bootstrap(
    terms: pd.DataFrame,
    agg: Aggregated,
    labels: np.ndarray | None,
    n_cells: int,
    *,
    order: np.ndarray | None,
    alpha: float,
    n_boot: int,
    rng: np.random.Generator | None,
    n_jobs: int,
    boot_weights: Literal["rademacher", "mammen"],
) -> tuple[pd.DataFrame, np.ndarray, float | None]:
    """Multiplier bootstrap (CS 2021 Algorithm 1, as R ``did``): IQR standard errors of
    the terms and the cells, sup-t bands over each family of terms. The multipliers are
    drawn per row (or cluster, numbered by first appearance) in ``order``
    (:func:`_row_order`), so relabelling units or clusters cannot change them."""
    terms = terms.copy()
    crit_event = None
    pos = np.arange(agg.basis.shape[0]) if order is None else order
    codes = None if labels is None else pd.factorize(np.asarray(labels)[pos])[0]
    draws = multiplier_draws(
        agg.basis[pos], n_boot=n_boot, rng=rng, cluster=codes, n_jobs=n_jobs,
        weights=boot_weights,
    )  # fmt: skip
    term_draws = draws @ agg.amat
    terms["se"] = np.where(np.isfinite(agg.se), bootstrap_se(term_draws), np.nan)
    cell_se = np.where(np.isfinite(agg.cell_se), bootstrap_se(draws[:, :n_cells]), np.nan)
    z = stats.norm.ppf(1 - alpha / 2)
    crit = np.full(len(terms), z)
    for prefix in ("event:", "cohort:", "calendar:"):
        m = terms["term"].str.startswith(prefix).to_numpy()
        if m.any():
            c = sup_t_critical(term_draws[:, m], terms["se"].to_numpy()[m], alpha)
            crit[m] = max(c, z) if np.isfinite(c) else z
            if prefix == "event:":
                crit_event = float(crit[m][0])
    est_arr = terms["estimate"].to_numpy()
    terms["band_low"] = est_arr - crit * terms["se"].to_numpy()
    terms["band_high"] = est_arr + crit * terms["se"].to_numpy()
    return terms, cell_se, crit_event


def _aggregations(
    cells: list[Cell],
    periods: np.ndarray,
    cohorts: np.ndarray,
    att: np.ndarray,
    psi: np.ndarray,
    sample: _Sample,
    labels: np.ndarray | None,
    opt: dict[str, Any],
    *,
    order: np.ndarray | None,
    alpha: float,
    rng: np.random.Generator | None,
    n_jobs: int,
) -> tuple[Aggregated, pd.DataFrame, np.ndarray, float | None]:
    """The aggregations (CS 2021 Section 3, cohort shares weighted by the sampling
    weights) with analytic or multiplier-bootstrap inference: the aggregation, its terms,
    the cells' SEs and the sup-t critical value of the event study."""
    agg = aggregate_cells(
        cells,
        periods,
        att,
        psi,
        group=sample.cohort,
        weights=sample.w,
        cohorts=cohorts,
        aggregations=opt["aggs"],
        cluster=labels,
    )
    if not opt["bootstrap"]:
        return agg, terms_table(agg), agg.cell_se, None
    terms, cell_se, crit_event = _bootstrap(
        terms_table(agg),
        agg,
        labels,
        len(cells),
        order=order,
        alpha=alpha,
        n_boot=opt["n_boot"],
        rng=rng,
        n_jobs=n_jobs,
        boot_weights=opt["boot_weights"],
    )
    return agg, terms, cell_se, crit_event


def _info(
    opt: dict[str, Any],
    *,
    weights: str | None,
    cluster: str | None,
    labels: np.ndarray | None,
    crit_event: float | None,
) -> dict[str, Any]:
    """Settings reported by ``glance()`` and table footers."""
    return {
        "control_group": opt["cg"],
        "est_method": opt["est_method"],
        "covariates": ",".join(opt["covs"]) if opt["covs"] else None,
        "weights": weights,
        "base_period": opt["base_period"],
        "anticipation": int(opt["anticipation"]),
        "data_structure": "repeated cross-sections",
        "se_type": "multiplier bootstrap" if opt["bootstrap"] else "analytic influence function",
        "n_boot": opt["n_boot"] if opt["bootstrap"] else 0,
        "cluster": cluster,
        "n_clusters": int(pd.Series(labels).nunique()) if labels is not None else None,
        "crit_event": crit_event,
    }


def _kept_influence(
    agg: Aggregated, sample: _Sample, labels: np.ndarray | None, panel: Panel
) -> InfluenceBlocks:
    """The observation-level influence functions ``with_inference`` re-sums (rows of the
    sample; a Series of cluster labels is looked up by each row's unit id), with the
    panel whose data order the bootstrap draws follow (:func:`_row_order`)."""
    return InfluenceBlocks(
        agg.basis,
        agg.amat,
        float(len(sample.y)),
        sample.frame["unit"].to_numpy(),
        panel=panel,
        frame=sample.frame,
        labels=() if labels is None else (labels,),
    )


# ----------------------------------------------------------------------------- fit
@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    control_group: str = "never_treated",
    est_method: str = "dr",
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    base_period: str = "varying",
    anticipation: int = 0,
    aggregations: Sequence[str] = AGGREGATIONS,
    cluster: str | None = None,
    bootstrap: bool = False,
    n_boot: int = 999,
    boot_weights: Literal["rademacher", "mammen"] = "rademacher",
) -> CSRepeatedCrossSectionResult:
    """Callaway-Sant'Anna ATT(g,t) and aggregations from repeated cross-sections.

    Parameters
    ----------
    panel : Panel
        One row per observation (see the module docstring); ``cohort`` is the first
        treated period of the observation's group.
    outcome : str
        Outcome column.
    control_group : {"never_treated", "not_yet_treated"}
        Comparison group (CS eqs. 2.3 / 2.4).
    est_method : {"dr", "ipw", "reg"}
        2x2 estimator (SZ 2020 RC: locally efficient DR, standardised IPW, outcome
        regression).
    covariates : list of str, optional
        Covariate columns of the panel (each row's own value).
    weights : str, optional
        Covariate column holding sampling weights (finite, >= 0, not all zero).
    base_period : {"varying", "universal"}
        As R ``did``.
    anticipation : int
        Anticipation (>= 0) in units of the time column, not in observed periods; cells
        with ``g - anticipation <= t < g`` compare with the last period before
        ``g - anticipation`` under either base period (R ``did`` PR #276).
    aggregations : list of str
        Among ``simple``, ``dynamic``, ``group``, ``calendar``.
    cluster : str, optional
        Covariate column of cluster labels (e.g. the region of each respondent): influence
        functions are summed within clusters (analytic and bootstrap).
    bootstrap : bool
        Multiplier bootstrap (CS Algorithm 1, as R ``did``): IQR standard errors and
        sup-t simultaneous bands over each family (event times, cohorts, periods).
    n_boot : int
        Bootstrap draws.
    boot_weights : {"rademacher", "mammen"}
        Multiplier distribution.

    Returns
    -------
    CSRepeatedCrossSectionResult
        Terms ``att``, ``event:E``, ``event_avg``, ``cohort:G``, ``cohort_avg``,
        ``calendar:T``, ``calendar_avg``; analytic influence-function SEs.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="cs_repeated_cross_section"
    )
    opt = _check_options(
        panel,
        control_group=control_group,
        est_method=est_method,
        base_period=base_period,
        anticipation=anticipation,
        aggregations=aggregations,
        covariates=covariates,
        bootstrap=bootstrap,
        n_boot=n_boot,
        boot_weights=boot_weights,
        weights=weights,
        cluster=cluster,
    )
    sample = _sample(panel, outcome, opt["covs"], weights, opt["cg"])
    gvec = sample.cohort
    periods = np.sort(np.unique(sample.time))
    cohorts = np.sort(np.unique(gvec[np.isfinite(gvec)]))
    cells = group_time_cells(
        periods,
        cohorts,
        base_period=opt["base_period"],
        anticipation=opt["anticipation"],
        warn_dropped=True,
        empty_message="No group-time cell can be formed (no cohort has a pre-period).",
    )
    est_fn = _ESTIMATORS[opt["est_method"]]
    att, psi, n_sub, failed = estimate_cells(
        cells,
        len(sample.y),
        lambda cell: _rc_cell(cell, sample, periods, opt["cg"], opt["anticipation"], est_fn),
        periods,
    )
    warn_failures(failed, "ATT(g,t) cell(s)")
    labels = _cluster_labels(sample, cluster)
    order = _row_order(panel, sample.frame, outcome) if opt["bootstrap"] else None
    agg, terms, cell_se, crit_event = _aggregations(
        cells, periods, cohorts, att, psi, sample, labels, opt, order=order, alpha=alpha,
        rng=rng, n_jobs=n_jobs,
    )  # fmt: skip
    info = _info(opt, weights=weights, cluster=cluster, labels=labels, crit_event=crit_event)
    info.update(
        n_cells=len(cells), n_cells_failed=len(failed), n_dropped_missing_outcome=sample.n_dropped
    )
    return CSRepeatedCrossSectionResult(
        estimator="cs_repeated_cross_section",
        outcome=outcome,
        terms=terms,
        main_term="att",
        n_units=int(sample.frame["unit"].nunique()),
        n_obs=len(sample.y),
        vcov=agg.vcov,
        info=info,
        alpha=alpha,
        att_gt=att_gt_frame(cells, periods, att, cell_se, n_obs=n_sub),
        influence=psi,
        blocks=_kept_influence(agg, sample, labels, panel),
    )
