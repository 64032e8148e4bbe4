"""Two-way fixed-effects regressions: the static DiD coefficient and the event study.

Static TWFE (the "canonical" staggered DiD regression, e.g. Goodman-Bacon 2021 eq. 2)::

    y_it = alpha_i + lambda_t + beta * D_it + x_it' gamma + e_it,   D_it = 1[t >= G_i]

Event study (Sun & Abraham 2021 eq. 4, the "dynamic" TWFE specification)::

    y_it = alpha_i + lambda_t + sum_{e != ref} mu_e * 1[t - G_i = e] + x_it' gamma + e_it

Estimation absorbs the fixed effects without dummy matrices (:func:`._fe.absorb`: the
largest effect, e.g. units, by group means, the others — years, region x year, city x year —
by an exact ``L x L`` Frisch-Waugh-Lovell step), runs OLS on the residualised regressors and
sums the cluster scores with ``np.bincount``. By Frisch-Waugh-Lovell the coefficients,
residuals and the clustered sandwich of the coefficients are those of the regression with
all dummies. The cluster-robust covariance is CR1 (Liang & Zeger 1986; Cameron & Miller
2015, eq. 12) scaled by ``G/(G-1) * (N-1)/(N-K)``:

* ``ssc="statsmodels"`` (default): ``K`` counts every estimated parameter including the
  absorbed effects (their exact rank), as statsmodels OLS with unit and year dummies, Stata
  ``areg`` and linearmodels ``PanelOLS(debiased=True, group_debias=True)`` do (1e-8 in
  ``tests/test_twfe.py``);
* ``ssc="fixest"``: fixest/pyfixest's default ``ssc(fixef.K = "nested")``, which leaves out
  of ``K`` the effects nested in the clusters (unit effects clustered by unit), so its
  standard errors are slightly smaller (see :func:`._fe.cluster_ssc_k`).

Confidence intervals use the t distribution with G-1 degrees of freedom, as fixest does for
clustered errors.

Why not linearmodels, which this module used before: measured on this 2-core machine,
``PanelOLS`` took 11.5 s for unit and year effects on 1,000,000 rows (100,000 units x 10
years) where this path takes under 1 s (pyfixest 0.60: about 3 s); issue 8 measured 58 s
for it with a third (city x year) effect. Even on a 30-city x 8-year panel a fit took
~150 ms against ~12 ms here. Its only edge was the ready-made small-sample factor (two
lines here), so one engine serves every size, with the same numbers as before (to 1e-8);
``benchmarks/bench_twfe.py`` reproduces the timings.

Both estimators are biased under staggered adoption with heterogeneous effects; they are
here as the familiar benchmark (see ``bacon`` for the decomposition) and for comparison
with the heterogeneity-robust estimators.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..inference.covariance import (
    conley_vcov,
    crv1,
    standard_errors_from_variance,
    warn_few_treated,
)
from ..inference.wild_cluster import wild_cluster_ci, wild_cluster_test
from ..panel import Panel
from ..parallel import as_generator
from ..results import (
    EstimationResult,
    check_bool,
    check_choice,
    check_fit_arguments,
    check_int,
    check_names,
    terms_frame,
)
from ._fe import _nested, absorb, cluster_ssc_k
from ._options import renamed
from ._scale import midrange, normalised_weights, outcome_scale, scale_equivariant
from ._weights import check_weight_name, weight_values

#: Most event-time dummies (plus covariates) of an event study: they are dense columns of
#: the regression (observations x regressors) and their Gram matrix is inverted.
_MAX_REGRESSORS = 5_000


@dataclass(frozen=True)
class RegressionDesign:
    """What another variance of a fitted regression needs, without refitting: regressors
    and outcome after absorbing the fixed effects (Frisch-Waugh-Lovell), the weights, the
    fixed-effect codes, the rows (unit and time) and the map from coefficients to the
    reported terms (the event study's ``att`` is an average of coefficients)."""

    Xd: np.ndarray
    yd: np.ndarray
    w: np.ndarray | None
    fe: list[np.ndarray]
    fe_rank: int
    rows: pd.DataFrame
    combo: np.ndarray
    ssc: str

    def rescaled(self, c: float) -> RegressionDesign:
        """The design for the outcome times ``c`` (regressors unchanged)."""
        return replace(self, yd=self.yd * c)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(beta, bread, weighted residuals) of the least-squares fit."""
        w = np.ones(len(self.yd)) if self.w is None else self.w
        bread = np.linalg.inv((self.Xd * w[:, None]).T @ self.Xd)
        beta = bread @ (self.Xd.T @ (w * self.yd))
        return beta, bread, w * (self.yd - self.Xd @ beta)


@dataclass(frozen=True, repr=False)
class TWFEResult(EstimationResult):
    """TWFE estimates; ``event_times`` lists the event-study bins (empty when static).

    ``with_inference`` gives other variances from the kept :class:`RegressionDesign`
    (clustering on any column, one or two ways, or the wild cluster bootstrap) without
    refitting, as linearmodels' and pyfixest's ``vcov=`` switch does.
    """

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {"design": 1}

    event_times: tuple[int, ...] = ()
    design: RegressionDesign | None = field(default=None, repr=False, compare=False)
    panel: Panel | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self,
        method: str = "cluster",
        *,
        cluster: Any = None,
        ssc: str | None = None,
        n_boot: int = 9999,
        boot_weights: str = "rademacher",
        rng: np.random.Generator | int | None = None,
        conley_km: float | None = None,
        conley_kernel: str | None = None,
    ) -> TWFEResult:
        """The same coefficients with another variance.

        Parameters
        ----------
        method : {"cluster", "wild", "conley"}
            CR1 clustered covariance (one or two ways; Cameron, Gelbach & Miller 2011),
            or the wild cluster restricted bootstrap (Roodman et al. 2019, WCR11) for
            few clusters: its p-values and test-inversion intervals are stored in the
            terms (``p_value``, ``ci_low``, ``ci_high``) beside the CR1 standard errors;
            or Conley's (1999) spatial HAC with a kernel of cutoff ``conley_km`` between
            the units' ``lat``/``lon`` (unit scores, so serial correlation within a unit is
            allowed; :func:`zoneimpact.inference.covariance.conley_vcov`; normal intervals,
            which rejected a true null 3-4% of the time with 8-12 regional shocks at
            150-600 km: ``benchmarks/mc_twfe_conley.py``).
        cluster : str, pandas.Series, or a list of two, optional
            A panel or geography column, or labels as a Series indexed by unit (or by
            (unit, time)); None: by unit.
        ssc : {"statsmodels", "fixest"}, optional
            Small-sample ``K`` (default: the fit's).
        conley_kernel : {"uniform", "bartlett"}, optional
            Conley's kernel: uniform (default, as R fixest's ``vcov_conley``) or Bartlett
            (Conley 1999).
        n_boot, boot_weights, rng
            Wild bootstrap draws (``2**G`` sign vectors are enumerated when fewer),
            ``"rademacher"`` or ``"webb"``, and their generator.
        """
        if self.design is None:
            raise EstimationError(
                "This result keeps no regression design (it was not made by twfe.fit or "
                "fit_event_study); refit to change its inference."
            )
        check_choice(method, "method", ("cluster", "wild", "conley"))
        options = {
            "cluster": cluster,
            "ssc": ssc,
            "n_boot": n_boot,
            "boot_weights": boot_weights,
            "rng": rng,
            "conley_km": conley_km,
            "conley_kernel": conley_kernel,
        }
        # the negative-variance warning's stacklevel: the helper, _reinfer, this method
        return self._reinfer(method, options, stacklevel=3)

    def _reinfer(self, method: str, options: dict[str, Any], *, stacklevel: int) -> TWFEResult:
        """:meth:`with_inference`; ``stacklevel`` of a warning counts from the line here
        that computes the standard errors."""
        assert self.design is not None
        c = outcome_scale(self.design.yd)
        if c != 1.0:
            # outcomes near the float limits: recompute the variance on the fit's working
            # scale, so the squared scores cannot overflow or underflow (exact: c is a
            # power of two; y x 1e160 gave an SE of inf one way and NaN two ways)
            small = self.rescaled(1 / c)
            return small._reinfer(method, options, stacklevel=stacklevel + 1).rescaled(c)
        cluster, ssc, conley_km, conley_kernel = (
            options[k] for k in ("cluster", "ssc", "conley_km", "conley_kernel")
        )
        if method == "conley":
            return self._conley(conley_km, "uniform" if conley_kernel is None else conley_kernel)
        if conley_kernel is not None:
            raise SpecError(
                f"conley_kernel={conley_kernel!r} applies to method='conley'; received "
                f"method={method!r}."
            )
        d = self.design
        ssc = d.ssc if ssc is None else ssc
        check_choice(ssc, "ssc", ("statsmodels", "fixest"))
        codes, cname = _row_clusters(self.panel, d.rows, cluster)
        beta, bread, wresid = d.coefficients()
        k = len(beta)
        big_k = k + d.fe_rank if ssc == "statsmodels" else _fixest_k(k, d.fe, codes)
        cov, g = crv1(d.Xd, wresid, bread, codes, n_params=big_k)
        full = d.combo @ cov @ d.combo.T
        se = standard_errors_from_variance(
            np.diag(full),
            self.terms["term"].astype(str).tolist(),
            two_way=len(codes) == 2,
            stacklevel=stacklevel,
        )
        terms = self.terms[["term", "estimate"]].assign(se=se, df=float(g - 1))
        info = {**self.info, "cluster": cname, "n_clusters": g, "ssc": ssc, "se_type": "CR1"}
        if method == "wild":
            terms, info = _wild_terms(
                self, terms, info, codes, options["n_boot"], options["boot_weights"], options["rng"]
            )
        return replace(self, terms=terms, vcov=full, info=info)

    def _conley(self, conley_km: Any, kernel: str) -> TWFEResult:
        if conley_km is None:
            raise SpecError("with_inference('conley') needs conley_km, the kernel cutoff in km.")
        if self.panel is None:
            raise SpecError("This result keeps no panel, so the units cannot be located.")
        d = self.design
        assert d is not None
        codes, units = pd.factorize(d.rows["unit"])
        geo = self.panel.require_geography(["lat", "lon"], list(units))
        beta, bread, wresid = d.coefficients()
        cov = conley_vcov(
            d.Xd,
            wresid,
            bread,
            codes,
            geo["lat"].to_numpy(float),
            geo["lon"].to_numpy(float),
            conley_km,
            kernel,
        )
        full = d.combo @ cov @ d.combo.T
        # B (S'KS) B with K's negative eigenvalues dropped: positive semi-definite, so a
        # negative variance is rounding, as for one-way clustering
        se = standard_errors_from_variance(np.diag(full), two_way=False)
        terms = self.terms[["term", "estimate"]].assign(se=se, df=np.inf)
        info = {
            **self.info,
            "cluster": f"Conley ({kernel.capitalize()} kernel, {conley_km:g} km)",
            "conley_kernel": kernel,
            "n_clusters": len(units),
            "se_type": "Conley spatial HAC",
            "conley_km": float(conley_km),
        }
        return replace(self, terms=terms, vcov=full, info=info)


def _fixest_k(n_coef: int, fe: list[np.ndarray], clusters: list[np.ndarray]) -> int:
    """The ``K`` of fixest's ``fixef.K = "nested"`` for one or more clustering dimensions: a
    fixed effect nested in any of the clusters is not counted (one dimension: as
    :func:`._fe.cluster_ssc_k`)."""
    if len(clusters) == 1:
        return cluster_ssc_k(n_coef, fe, clusters[0])
    sizes = [int(c.max()) + 1 for c in fe]
    nested = [s for c, s in zip(fe, sizes, strict=True) if any(_nested(c, g) for g in clusters)]
    return n_coef + sum(sizes) - (len(fe) - 1) - sum(nested) + len(nested)


def _row_clusters(
    panel: Panel | None, rows: pd.DataFrame, cluster: Any
) -> tuple[list[np.ndarray], str]:
    """Integer cluster codes per row for each clustering dimension, and a name."""
    dims = list(cluster) if isinstance(cluster, list | tuple) else [cluster]
    out, names = [], []
    for dim in dims:
        if isinstance(dim, pd.Series):
            if isinstance(dim.index, pd.MultiIndex):
                labels = dim.reindex(pd.MultiIndex.from_frame(rows[["unit", "time"]]))
            else:
                labels = rows["unit"].map(dim)
            if labels.isna().any():
                u = rows["unit"].to_numpy()[np.flatnonzero(labels.isna().to_numpy())[0]]
                u = u.item() if isinstance(u, np.generic) else u
                raise SpecError(
                    f"Cluster labels {dim.name!r} have no value for unit {u!r}; index the "
                    "Series by unit (or by (unit, time)) and cover every row of the estimate."
                )
            out.append(pd.factorize(labels)[0])
            names.append(str(dim.name))
            continue
        if panel is None:
            raise SpecError("This result keeps no panel; pass cluster labels as a Series.")
        codes, name = _cluster_codes(panel, panel.data.loc[rows.index], dim)
        out.append(codes)
        names.append(name)
    return out, " + ".join(names)


def _wild_terms(
    res: TWFEResult,
    terms: pd.DataFrame,
    info: dict[str, Any],
    codes: list[np.ndarray],
    n_boot: int,
    boot_weights: str,
    rng: np.random.Generator | int | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Wild cluster bootstrap p-values and intervals of the coefficients (not of the
    event study's averaged ``att``, a combination the bootstrap test does not cover)."""
    d = res.design
    assert d is not None
    if d.w is not None:
        raise SpecError("The wild cluster bootstrap here is for unweighted regressions.")
    if len(codes) != 1:
        raise SpecError("The wild cluster bootstrap clusters one way; pass one cluster.")
    check_choice(boot_weights, "boot_weights", ("rademacher", "webb"))
    weights: Literal["rademacher", "webb"] = "webb" if boot_weights == "webb" else "rademacher"
    gen = as_generator(rng)
    cluster_codes = _canonical_codes(res, d.rows, codes[0])
    p, lo, hi = (np.full(len(terms), np.nan) for _ in range(3))
    for j in range(d.Xd.shape[1]):
        row = int(np.flatnonzero(d.combo[:, j] == 1)[0])
        if np.count_nonzero(d.combo[row]) != 1:
            continue
        seed = int(gen.integers(2**63))
        # the absorbed design again with its fixed effects: absorbing is idempotent, and
        # the draws re-estimate the effects (the K term of the wild_cluster notes)
        test = wild_cluster_test(
            d.yd, d.Xd, cluster_codes, column=j, fe=d.fe, n_boot=n_boot, weights=weights, rng=seed
        )
        p[row] = test.p_value
        lo[row], hi[row] = wild_cluster_ci(
            d.yd,
            d.Xd,
            cluster_codes,
            column=j,
            fe=d.fe,
            alpha=res.alpha,
            n_boot=n_boot,
            weights=weights,
            rng=seed,
        )
    out = terms.assign(p_value=p, ci_low=lo, ci_high=hi)
    se_type = f"CR1; wild cluster bootstrap ({boot_weights}) p and CI"
    return out, {**info, "se_type": se_type, "ci_alpha": res.alpha}


def _canonical_codes(res: TWFEResult, rows: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
    """``codes`` renumbered in the data's order of units (:meth:`Panel.canonical_order`), so
    that bootstrap draws, which are indexed by cluster code, do not follow the labels: the
    same seed gives the same draws whatever the units (or clusters) are called."""
    if res.panel is None:
        return codes
    units = rows["unit"].to_numpy()
    distinct = pd.unique(units)
    rank = pd.Series(
        np.arange(len(distinct)), index=res.panel.canonical_order(distinct, res.outcome)
    )
    first = pd.Series(rank.reindex(units).to_numpy()).groupby(codes).min()
    new = first.rank(method="first").astype(int) - 1
    return new.reindex(codes).to_numpy()


def _cluster_codes(panel: Panel, data: pd.DataFrame, cluster: str | None) -> tuple[np.ndarray, str]:
    """Integer cluster codes aligned with ``data`` and the cluster's name."""
    if cluster is not None and not isinstance(cluster, str | int):
        raise SpecError(
            f"cluster must be a column name (e.g. 'region') or None for units; received "
            f"{cluster!r} ({type(cluster).__name__})."
        )
    cluster = panel.column_for(cluster)
    if cluster is None or cluster == "unit":
        return pd.factorize(data["unit"])[0], "unit"
    if cluster in data.columns:
        col = data[cluster]
    elif panel.geography is not None and cluster in panel.geography.columns:
        col = data["unit"].map(panel.geography[cluster])
    else:
        raise SpecError(
            f"Cluster variable {cluster!r} is neither a panel column nor a geography column."
        )
    if col.isna().any():
        u = data.loc[col.isna().to_numpy(), "unit"].iloc[0]
        raise EstimationError(f"Cluster variable {cluster!r} is missing for unit {u!r}.")
    return pd.factorize(col)[0], cluster


def _warn_few_treated_clusters(
    panel: Panel,
    data: pd.DataFrame,
    treated: np.ndarray,
    cluster: str | None,
    stacklevel: int = 4,
) -> None:
    """Warn when the treated observations lie in fewer than ``FEW_TREATED_CLUSTERS``
    clusters: the CR1 sandwich then nearly loses their residuals (MacKinnon & Webb 2017)."""
    codes, cname = _cluster_codes(panel, data, cluster)
    warn_few_treated(
        len(np.unique(codes[treated])), f"cluster(s) of {cname!r} (with treated units)",
        stacklevel=stacklevel,
    )  # fmt: skip


def _prepare(
    panel: Panel, outcome: str, covariates: list[str] | None, weights: str | None = None
) -> tuple[pd.DataFrame, list[str], np.ndarray | None]:
    """Rows with the outcome and covariates observed; the weights of those rows (one
    missing there is an error, as in CS, not a dropped row)."""
    panel._check_outcome(outcome)
    covariates = check_names(covariates, "covariates")
    unknown = [c for c in covariates if c not in panel.covariates]
    if unknown:
        raise SpecError(
            f"Covariate(s) {unknown} not in the panel; covariates: {list(panel.covariates)}."
        )
    weights = check_weight_name(panel, weights)
    data = panel.data.dropna(subset=[outcome, *covariates])
    if data.empty:
        raise EstimationError(f"No observations with a non-missing {outcome!r}.")
    w = weight_values(data, weights) if weights else None
    return data, covariates, w


def _fe_codes(
    panel: Panel, data: pd.DataFrame, fixed_effects: tuple[str, ...] | list[str] | str
) -> list[np.ndarray]:
    """Integer codes of each fixed effect (``"unit"``, ``"time"``, a panel or geography
    column, or an interaction ``"a:b"`` of those).
    """
    fixed_effects = _fe_names(fixed_effects)
    geo = panel.geography

    def column(name: str) -> np.ndarray:
        # the caller's names of the unit and time columns work too ("city:year")
        name = panel.column_for(name)
        if name in data.columns:
            col = data[name]
        elif geo is not None and name in geo.columns:
            col = data["unit"].map(geo[name])
        else:
            geo_cols = [] if geo is None else list(geo.columns)
            raise SpecError(
                f"Fixed effect {name!r} is neither a panel column ({list(data.columns)}) nor a "
                f"geography column ({geo_cols}). Use 'unit', 'time', a column, or an "
                "interaction such as 'region:time'."
            )
        if col.isna().any():
            u = data.loc[col.isna().to_numpy(), "unit"].iloc[0]
            raise EstimationError(
                f"Fixed-effect column {name!r} is missing for unit {u!r}; fill it or drop the "
                "fixed effect."
            )
        return pd.factorize(col)[0]

    out = []
    for fe in fixed_effects:
        parts = [column(part.strip()) for part in str(fe).split(":")]
        codes = parts[0].astype(np.int64)
        for part in parts[1:]:
            codes = codes * (int(part.max()) + 1) + part
        out.append(pd.factorize(codes)[0] if len(parts) > 1 else parts[0])
    return out


def _fe_names(fixed_effects: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    names = tuple(check_names(fixed_effects, "fixed_effects", none=False))
    if not names:
        raise SpecError("fixed_effects is empty: give at least ('unit', 'time').")
    bad = [f for f in names if not isinstance(f, str) or not f.strip()]
    if bad:
        raise SpecError(
            f"fixed_effects must be names such as 'unit', 'time' or 'region:time'; received "
            f"{bad[0]!r}."
        )
    return names


def _ols(
    panel: Panel,
    data: pd.DataFrame,
    outcome: str,
    regressors: pd.DataFrame,
    cluster: str | None,
    fixed_effects: tuple[str, ...] | list[str] | str = ("unit", "time"),
    ssc: str = "statsmodels",
    weights: np.ndarray | None = None,
) -> tuple[pd.Series, pd.DataFrame, int, str]:
    """(Weighted) OLS with absorbed fixed effects and CR1 clustered covariance.

    With ``weights`` the fixed effects are absorbed by the weighted within transformation,
    the coefficients are weighted least squares and the cluster scores are
    ``sum_i w_i x_i u_i`` (pyfixest/fixest analytic weights; module docstring for CR1).
    """
    params, cov, n_clusters, cname, _ = _ols_design(
        panel, data, outcome, regressors, cluster, fixed_effects, ssc, weights
    )
    return params, cov, n_clusters, cname


def _gram_full_rank(gram: np.ndarray, n_rows: int) -> bool:
    """Whether the Gram matrix ``U'WU`` of ``n_rows`` observations has full rank.

    Its eigenvalues are the squared singular values of ``W^{1/2} U``, and forming it rounds
    each entry by up to ``n_rows * eps`` of its scale (Higham 2002, Section 3.5): an
    exactly collinear design leaves an eigenvalue of that size, of either sign (-1.1e-14
    for 20 columns of 400 rows, which ``numpy.linalg.matrix_rank``'s ``k * eps`` tolerance
    called non-zero). The tolerance is therefore ``max(n_rows, k) * eps`` of the largest
    eigenvalue, on the Gram scale, as the coefficients are solved from this Gram matrix.
    """
    ev = np.linalg.eigvalsh(gram)
    return bool(ev[0] > ev[-1] * max(n_rows, gram.shape[0]) * np.finfo(float).eps)


def _ols_design(
    panel: Panel,
    data: pd.DataFrame,
    outcome: str,
    regressors: pd.DataFrame,
    cluster: str | None,
    fixed_effects: tuple[str, ...] | list[str] | str,
    ssc: str,
    weights: np.ndarray | None,
) -> tuple[pd.Series, pd.DataFrame, int, str, RegressionDesign]:
    """:func:`_ols` plus the design another variance is computed from."""
    if ssc not in ("statsmodels", "fixest"):
        raise SpecError(f"ssc must be 'statsmodels' or 'fixest'; received {ssc!r}.")
    weights = None if weights is None else normalised_weights(weights)
    codes, cname = _cluster_codes(panel, data, cluster)
    fe = _fe_codes(panel, data, fixed_effects)
    X = regressors.to_numpy(dtype=float)
    y = data[outcome].to_numpy(float)
    # centred on its midrange first: the fixed effects absorb a constant, so nothing
    # estimable changes, but absorbed at the outcome's level the residuals lost digits to
    # it (on an unbalanced panel, y + 1e10 moved the SEs by up to 3e-6 relative against
    # the same rounded data with the offset removed exactly; now 2e-16 at most), as the
    # imputation's Y(0) model did before it centred the same way
    y = y - midrange(y)
    Z, fe_rank = absorb(np.column_stack([y, X]), fe, weights=weights)
    yd, Xd = Z[:, 0], Z[:, 1:]
    names = list(regressors.columns)
    # a regressor the fixed effects reproduce exactly leaves only rounding noise; both
    # checks are relative to each centred column, so a covariate's units (GDP in yuan,
    # or times 1e-12) cannot decide them (session 19)
    scale = np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=0))
    within = np.sqrt((Xd**2).sum(axis=0))
    ratio = np.divide(within, scale, out=np.zeros_like(within), where=scale > 0)
    gone = [c for c, r in zip(names, ratio, strict=True) if r < 1e-9]
    if gone:
        raise EstimationError(
            f"Regressor(s) {gone} do not vary within the fixed effects {tuple(fixed_effects)}: "
            "they are absorbed (e.g. by the unit fixed effects); drop them."
        )
    w = np.ones(len(Z)) if weights is None else weights
    unit = Xd / within  # every column non-zero here
    if not _gram_full_rank((unit * w[:, None]).T @ unit, len(Z)):
        raise EstimationError(
            f"Regressors {names} are collinear once the fixed effects are absorbed; drop one."
        )
    design = RegressionDesign(
        Xd=Xd,
        yd=yd,
        w=weights,
        fe=fe,
        fe_rank=fe_rank,
        rows=data[["unit", "time"]],
        combo=np.eye(len(names)),
        ssc=ssc,
    )
    beta, bread, wresid = design.coefficients()
    n_clusters = int(codes.max()) + 1
    n, k = len(yd), len(names)
    big_k = k + fe_rank if ssc == "statsmodels" else cluster_ssc_k(k, fe, codes)
    if n_clusters < 2:
        raise EstimationError(
            f"Clustered standard errors need at least two clusters of {cname!r}; the "
            "estimation sample has one. Cluster on another variable or add units."
        )
    if n <= big_k:
        raise EstimationError(
            f"No residual degrees of freedom: {n} observations for {big_k} parameters "
            f"(regressors {names} plus the fixed effects {tuple(fixed_effects)})."
        )
    cov, _ = crv1(Xd, wresid, bread, [codes], n_params=big_k)
    params = pd.Series(beta, index=names)
    return params, pd.DataFrame(cov, index=names, columns=names), n_clusters, cname, design


def _twfe_result(
    estimator: str,
    outcome: str,
    data: pd.DataFrame,
    names: list[str],
    estimates: np.ndarray,
    vcov: np.ndarray,
    *,
    n_clusters: int,
    cluster: str,
    fixed_effects: str,
    ssc: str,
    weights: str | None,
    alpha: float,
    extra_info: dict[str, Any] | None = None,
    **fields: Any,
) -> TWFEResult:
    """The result of a regression of the TWFE engine (static, event study, first
    differences): terms with ``G - 1`` degrees of freedom (t intervals, as fixest with
    clustered errors), the covariance, and the ``info`` keys they share; ``fields`` are
    :class:`TWFEResult`'s own (``event_times``, ``design``, ``panel``)."""
    se = np.sqrt(np.diag(vcov))
    terms = terms_frame(names, estimates, se, df=np.full(len(estimates), n_clusters - 1))
    info: dict[str, Any] = {
        "cluster": cluster,
        "n_clusters": n_clusters,
        "fixed_effects": fixed_effects,
        "ssc": ssc,
        **(extra_info or {}),
        "weights": weights or "",
    }
    return TWFEResult(
        estimator=estimator,
        outcome=outcome,
        terms=terms,
        n_units=int(data["unit"].nunique()),
        n_obs=int(len(data)),
        vcov=vcov,
        info=info,
        alpha=alpha,
        **fields,
    )


@scale_equivariant()
def fit(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    covariates: list[str] | None = None,
    cluster: str | None = None,
    fixed_effects: tuple[str, ...] | list[str] = ("unit", "time"),
    ssc: Literal["statsmodels", "fixest"] = "statsmodels",
    weights: str | None = None,
) -> TWFEResult:
    """Static two-way fixed-effects DiD coefficient.

    Parameters
    ----------
    panel : Panel
        Validated panel; the treatment dummy is ``time >= cohort``.
    outcome : str
        Outcome column.
    covariates : list of str, optional
        Time-varying covariates added linearly.
    cluster : str, optional
        ``"unit"`` (default) or a panel/geography column such as ``"region"``.
    fixed_effects : sequence of str
        Absorbed effects: ``"unit"``, ``"time"``, any panel or geography column (e.g.
        ``"region"``) and interactions such as ``"region:time"`` (region-by-year effects).
        Effects nested in another (``"time"`` within ``"region:time"``) are harmless.
    ssc : {"statsmodels", "fixest"}
        Small-sample factor ``K``: every absorbed parameter (statsmodels/Stata dummies) or
        fixest's default, which leaves out effects nested in the clusters.
    weights : str, optional
        Column of positive analytic or sampling weights: weighted least squares with the
        weighted within transformation and clustered sandwich (pyfixest ``weights=``).

    Returns
    -------
    TWFEResult
        Term ``att`` is beta of the equation in the module docstring; covariate
        coefficients follow under their own names.
    """
    check_fit_arguments(panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="twfe")
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    data, covariates, w = _prepare(panel, outcome, covariates, weights)
    fixed_effects = _fe_names(fixed_effects)
    d = (data["time"] >= data["cohort"]).astype(float)
    if d.nunique() < 2:
        raise EstimationError("The treatment dummy does not vary: nobody is treated in the sample.")
    _warn_few_treated_clusters(panel, data, d.to_numpy() != 0, cluster)
    reg = pd.concat([d.rename("att"), data[covariates]], axis=1)
    params, cov, n_clusters, cname, design = _ols_design(
        panel, data, outcome, reg, cluster, fixed_effects, ssc, w
    )
    return _twfe_result(
        "twfe",
        outcome,
        data,
        list(params.index),
        params.to_numpy(),
        cov.to_numpy(),
        n_clusters=n_clusters,
        cluster=cname,
        fixed_effects=" + ".join(fixed_effects),
        ssc=ssc,
        weights=weights,
        alpha=alpha,
        extra_info={"covariates": ",".join(covariates)},
        design=design,
        panel=panel,
    )


# ---------------------------------------------------------------------- event studies
@dataclass(frozen=True)
class EventSpec:
    """The checked event-study options shared by the levels (:func:`fit_event_study`) and
    first-difference (:func:`.first_difference.fit_event_study`) event studies: window
    ``[-leads, lags]`` (None: every observed event time), reference event time(s), user
    bins and whether the endpoints pool the event times beyond the window."""

    leads: int | None
    lags: int | None
    refs: list[int]
    bins: list[tuple[int, int]]
    bin_endpoints: bool
    # set by :func:`event_dummies` once the data are seen: the labels of the window's first
    # and last event times, and the lead dropped as a second reference (None: none dropped)
    window: tuple[int, int] | None = None
    second_reference: int | None = None

    def info(self) -> dict[str, Any]:
        """The ``info`` entries that describe the event-time dummies: ``reference`` (the
        requested omitted event time(s)), ``second_reference`` (the lead dropped because no
        unit is never treated, when one was), ``window_start``/``window_end`` (the labels of
        the window's ends, which bin everything beyond them when ``binned``) and ``bins``."""
        refs = self.refs
        out: dict[str, Any] = {
            "reference": refs[0] if len(refs) == 1 else ",".join(str(r) for r in refs),
            "binned": bool(self.bin_endpoints),
            "bins": ", ".join(f"{_bin_label(a, z)}=[{a}..{z}]" for a, z in self.bins),
        }
        if self.window is not None:
            out["window_start"], out["window_end"] = self.window
        if self.second_reference is not None:
            out["second_reference"] = self.second_reference
        return out


def event_spec(leads: Any, lags: Any, ref_period: Any, bins: Any, bin_endpoints: Any) -> EventSpec:
    """Check the event-study options once (named :class:`SpecError` on bad input)."""
    leads = check_int(leads, "leads", minimum=0, none=True)
    lags = check_int(lags, "lags", minimum=0, none=True)
    refs = _event_refs(ref_period)
    user_bins = _event_bins(bins)
    return EventSpec(leads, lags, refs, user_bins, check_bool(bin_endpoints, "bin_endpoints"))


def _event_refs(ref: Any) -> list[int]:
    """The omitted event time(s): one whole number or a list of them."""
    if isinstance(ref, list | tuple | np.ndarray):
        refs = sorted({check_int(r, "ref_period") for r in ref})
        if not refs:
            raise SpecError("ref_period is empty: omit at least one event time (e.g. -1).")
        return refs
    return [check_int(ref, "ref_period")]


def _event_bins(bins: Any) -> list[tuple[int, int]]:
    """User bins ``[[first, last], ...]`` (inclusive), disjoint and on one side of 0."""
    if bins is None:
        return []
    if isinstance(bins, str) or not isinstance(bins, list | tuple):
        raise SpecError(
            f"bins must be a list of [first, last] event-time pairs, e.g. [[-4, -3], [0, 1]]; "
            f"received {bins!r}."
        )
    out: list[tuple[int, int]] = []
    for b in bins:
        if isinstance(b, str) or not isinstance(b, list | tuple) or len(b) != 2:
            raise SpecError(
                f"Each bin must be a pair [first, last] of event times; received {b!r} in bins."
            )
        a, z = check_int(b[0], "bins"), check_int(b[1], "bins")
        if a > z:
            raise SpecError(f"Bin [{a}, {z}] is empty: its first event time exceeds its last.")
        if a < 0 <= z:
            raise SpecError(
                f"Bin [{a}, {z}] mixes pre-treatment (< 0) and post-treatment (>= 0) event "
                "times; split it at 0."
            )
        out.append((a, z))
    out.sort()
    for (a1, z1), (a2, z2) in zip(out, out[1:], strict=False):
        if a2 <= z1:
            raise SpecError(f"Bins [{a1}, {z1}] and [{a2}, {z2}] overlap; make them disjoint.")
    return out


def _bin_label(a: int, z: int) -> int:
    """A bin is named by its event time closest to zero (``event:2`` for [2, 3],
    ``event:-2`` for [-3, -2]), as the clipped endpoints are (``event:-K`` pools e <= -K)."""
    return z if z < 0 else a


def _label_of(e: int, bins: list[tuple[int, int]]) -> int:
    """The label of event time ``e``: its bin's, or ``e`` itself when in no bin."""
    for a, z in bins:
        if a <= e <= z:
            return _bin_label(a, z)
    return e


def _event_window(observed: np.ndarray, spec: EventSpec, outcome: str) -> tuple[int, int]:
    """The window ``[lo, hi]`` of event times: ``[-leads, lags]``, or the observed range."""
    if observed.size == 0:
        raise EstimationError(
            f"No treated unit has an observed {outcome!r}: the event study has no event time "
            "to estimate."
        )
    lo = int(observed.min()) if spec.leads is None else -spec.leads
    hi = int(observed.max()) if spec.lags is None else spec.lags
    for r in spec.refs:
        if not lo <= r <= hi:
            raise SpecError(f"Reference event time {r} lies outside the window [{lo}, {hi}].")
    return lo, hi


def _dummy_times(
    label: np.ndarray, raw: np.ndarray, spec: EventSpec, lo: int, hi: int, never_treated: bool
) -> tuple[list[int], int | None]:
    """The labels that get a dummy: every one of the window that occurs in the sample
    (those that do not would be empty columns), except the reference(s); and the lead
    dropped as a second reference (None when none was). ``raw`` holds each row's event time
    before binning. Built from the observed labels, so a window of 10**9 periods costs
    nothing."""
    ref_labels = sorted({_label_of(r, spec.bins) for r in spec.refs})
    seen = np.unique(label[np.isfinite(label)])
    times = [int(e) for e in seen if lo <= e <= hi and e not in ref_labels]
    missing = [r for r in ref_labels if not (label == r).any()]
    if missing:
        # every kept treated row carries one dummy, so without an observed reference the
        # dummies sum to the treated units' indicator, which the unit effects absorb; a
        # second reference that is never observed normalises nothing
        shown = ", ".join(str(r) for r in missing)
        raise SpecError(
            f"Reference event time {shown} is not observed for any treated unit (observed "
            f"event times: {_event_range(seen)}): it normalises no coefficient. Choose "
            "observed event times with ref_period=."
        )
    if never_treated or len(ref_labels) > 1 or not _trend_collinear(label, raw):
        return times, None
    ref = ref_labels[0]
    # Without never-treated units, and when every label holds rows of a single event time,
    # the dummies sum to a linear trend in event time (t - G_i), which the unit and time
    # effects absorb (Borusyak, Jaravel & Spiess 2024, Sec. 3): a second normalisation is
    # needed. The most distant observed lead takes it; bins that pool several event times
    # break the trend and need none.
    leads = [e for e in times if e < 0]
    if not leads:
        raise EstimationError(
            "Without never-treated units the event-time dummies are collinear with the unit "
            "and time effects (a linear trend in event time) and need a second reference "
            f"among the leads, but the window has no lead besides the reference {ref}. "
            "Widen the window (leads=), bin its endpoints so they pool several event times "
            "(bin_endpoints=True), or add never-treated units."
        )
    return [e for e in times if e != leads[0]], leads[0]


def _trend_collinear(label: np.ndarray, raw: np.ndarray) -> bool:
    """Whether every label (bin or event time) holds rows of one event time only, so that
    the dummies reproduce the event time itself (``sum_b v_b D_b = t - G_i``)."""
    ok = np.isfinite(label)
    pairs = pd.DataFrame({"label": label[ok], "raw": raw[ok]})
    return bool((pairs.groupby("label")["raw"].nunique() <= 1).all())


def _event_range(seen: np.ndarray) -> str:
    """Observed event times as text, at most six shown."""
    shown = ", ".join(str(int(e)) for e in seen[:6])
    return shown + (f" ... {int(seen[-1])}" if len(seen) > 6 else "")


def event_dummies(
    data: pd.DataFrame,
    w: np.ndarray | None,
    spec: EventSpec,
    *,
    outcome: str,
    n_covariates: int = 0,
) -> tuple[pd.DataFrame, np.ndarray | None, pd.DataFrame, EventSpec]:
    """The event-time (bin) dummies ``1[t - G_i in B_b]`` of Sun & Abraham (2021) eq. 4
    with the bins of Schmidheiny & Siegloch (2023, Section 2), in levels.

    With binned endpoints the event times beyond the window are clipped to its ends;
    without, the treated rows outside the window are dropped (so the reference stays
    clean). Returns the rows kept, their weights, the dummies (columns ``event:E``) and
    ``spec`` with the window's ends and any second reference filled in (for ``info``).
    """
    treated = np.isfinite(data["cohort"].to_numpy())
    event = np.where(
        treated, data["time"].to_numpy() - np.where(treated, data["cohort"], 0), np.nan
    )
    lo, hi = _event_window(event[treated], spec, outcome)
    raw = event
    if spec.bin_endpoints:
        event = np.where(treated, np.clip(event, lo, hi), np.nan)
    else:
        outside = treated & ((event < lo) | (event > hi))
        data, event, raw = data.loc[~outside], event[~outside], raw[~outside]
        w = None if w is None else w[~outside]
    label = event.copy()
    for a, z in spec.bins:
        label[(event >= a) & (event <= z)] = _bin_label(a, z)
    never = bool(np.isinf(data["cohort"]).any())
    times, second = _dummy_times(label, raw, spec, lo, hi, never)
    spec = replace(
        spec, window=(_label_of(lo, spec.bins), _label_of(hi, spec.bins)), second_reference=second
    )
    if len(times) + n_covariates > _MAX_REGRESSORS:
        raise EstimationError(
            f"The event study has {len(times)} event-time dummies (event times "
            f"{times[0]} to {times[-1]}); the regression holds them as dense columns, beyond "
            f"this implementation's limit of {_MAX_REGRESSORS:,}. Set leads/lags (with "
            "bin_endpoints=True to pool the rest) or aggregate the periods."
        )
    cols = {f"event:{e}": (label == e).astype(float) for e in times}
    reg = pd.DataFrame(cols, index=data.index)
    return data, w, reg.loc[:, reg.sum() > 0], spec


def post_average(
    params: pd.Series, cov: pd.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The coefficients with their headline ``att`` appended, the average of the
    post-period (E >= 0) event-time coefficients (a linear combination ``w'beta``), and
    the covariance of all of them; also the names and ``w``."""
    names = list(params.index)
    post = np.array([n.startswith("event:") and int(n.split(":")[1]) >= 0 for n in names], float)
    if not post.any():
        raise EstimationError("The event-study window has no post-treatment event time.")
    wpost = post / post.sum()
    b = np.append(params.to_numpy(), wpost @ params.to_numpy())
    v = cov.to_numpy()
    full = np.zeros((len(b), len(b)))
    full[:-1, :-1] = v
    full[-1, :-1] = full[:-1, -1] = v @ wpost
    full[-1, -1] = wpost @ v @ wpost
    return names, b, full, wpost


def event_study_result(
    estimator: str,
    outcome: str,
    data: pd.DataFrame,
    fitted: tuple[pd.Series, pd.DataFrame, int, str, RegressionDesign],
    spec: EventSpec,
    *,
    fixed_effects: str,
    ssc: str,
    weights: str | None,
    alpha: float,
    panel: Panel,
    covariates: list[str] | None = None,
) -> TWFEResult:
    """The result of an event-study regression (``fitted`` from :func:`_ols_design`):
    its coefficients, the post-period average ``att`` and what another variance needs;
    ``covariates`` (when given) are recorded in ``info`` as the names joined by commas."""
    params, cov, n_clusters, cname, design = fitted
    names, b, full, wpost = post_average(params, cov)
    return _twfe_result(
        estimator,
        outcome,
        data,
        [*names, "att"],
        b,
        full,
        n_clusters=n_clusters,
        cluster=cname,
        fixed_effects=fixed_effects,
        ssc=ssc,
        weights=weights,
        alpha=alpha,
        extra_info={
            **spec.info(),
            **({} if covariates is None else {"covariates": ",".join(covariates)}),
        },
        event_times=tuple(int(t.split(":")[1]) for t in names if t.startswith("event:")),
        design=replace(design, combo=np.vstack([np.eye(len(names)), wpost])),
        panel=panel,
    )


@renamed(ref="ref_period")
@scale_equivariant()
def fit_event_study(
    panel: Panel,
    *,
    outcome: str,
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    leads: int | None = None,
    lags: int | None = None,
    ref_period: int | list[int] = -1,
    bin_endpoints: bool = False,
    bins: list[list[int]] | None = None,
    covariates: list[str] | None = None,
    cluster: str | None = None,
    fixed_effects: tuple[str, ...] | list[str] = ("unit", "time"),
    ssc: Literal["statsmodels", "fixest"] = "statsmodels",
    weights: str | None = None,
) -> TWFEResult:
    """Dynamic TWFE event study with relative-period dummies, bins and references.

    The regression is the Sun & Abraham (2021) eq. 4 specification in the module docstring
    with the event-time dummies replaced by bin dummies ``1[t - G_i in B_b]`` where bins
    are asked for (Schmidheiny & Siegloch 2023, "On event studies and distributed-lags in
    two-way fixed effects models", *J. Applied Econometrics* 38(5), Section 2: binned
    endpoints; user bins such as two-year bins pool adjacent event times under a common
    coefficient). Steps: :func:`event_spec` (options), :func:`event_dummies`,
    :func:`_ols_design` (absorbed effects, CR1), :func:`event_study_result` (``att``).

    Parameters
    ----------
    leads, lags : int, optional
        Window of event times ``[-leads, lags]``; by default every observed event time.
    ref_period : int or list of int
        Omitted reference event time(s) (default -1). Several (e.g. ``[-5, -1]``) are
        pooled into one reference; a reference inside a user bin makes the whole bin the
        reference (``bins=[[-3, -1]], ref_period=-1`` pools the last three leads as reference).
    bin_endpoints : bool
        If True, event times beyond the window are pooled into the endpoint bins
        (``event:-leads`` holds every ``e <= -leads``, ``event:lags`` every
        ``e >= lags``); if False they get no dummy and are pooled with the reference
        (observations outside the window are dropped for treated units, so the reference
        stays clean).
    bins : list of [first, last], optional
        User-defined bins of event times (inclusive, disjoint, each on one side of 0), e.g.
        ``[[0, 1], [2, 3], [-3, -2]]`` for two-period bins; a bin's term is ``event:E``
        with ``E`` its event time closest to zero (``event:2`` for [2, 3], ``event:-2``
        for [-3, -2]). Event times in no bin keep their own dummy.
    covariates, cluster, fixed_effects, ssc, weights
        As in :func:`fit`.

    Returns
    -------
    TWFEResult
        Terms ``event:E`` for every event time or bin except the reference(s), covariate
        coefficients, and ``att``, the average of the post-period (E >= 0)
        coefficients; the cluster-robust covariance of all of them in ``vcov``;
        ``info["bins"]`` lists the bins as ``E=[first..last]``.
    """
    check_fit_arguments(
        panel, outcome, alpha=alpha, n_jobs=n_jobs, rng=rng, estimator="event_study"
    )
    spec = event_spec(leads, lags, ref_period, bins, bin_endpoints)
    check_choice(ssc, "ssc", ("statsmodels", "fixest"))
    data, covariates, w = _prepare(panel, outcome, covariates, weights)
    fixed_effects = _fe_names(fixed_effects)
    data, w, dummies, spec = event_dummies(
        data, w, spec, outcome=outcome, n_covariates=len(covariates)
    )
    treated = np.isfinite(data["cohort"].to_numpy(float))
    # stacklevel: the helper, this fit, renamed's and scale_equivariant's wrappers
    _warn_few_treated_clusters(panel, data, treated, cluster, stacklevel=5)
    reg = pd.concat([dummies, data[covariates]], axis=1)
    fitted = _ols_design(panel, data, outcome, reg, cluster, fixed_effects, ssc, w)
    return event_study_result(
        "event_study",
        outcome,
        data,
        fitted,
        spec,
        fixed_effects=" + ".join(fixed_effects),
        ssc=ssc,
        weights=weights,
        alpha=alpha,
        panel=panel,
        covariates=covariates,
    )
