"""Results built from unit-level influence functions (private helper).

Shared by the estimators whose terms are averages of unit-level influence functions and
whose extra outputs are tables (de Chaisemartin & D'Haultfoeuille's ``DID_l``, Callaway,
Goodman-Bacon & Sant'Anna's dose-response curves):

* :class:`TablesResult`: a frozen :class:`~zoneimpact.results.EstimationResult` whose
  ``artifacts()`` are the DataFrame fields named in ``ARTIFACTS``;
* :func:`covariate_column`: the check that an option names a covariate of the panel;
* :func:`influence_vcov`: ``V = S' S / n^2`` with ``S`` the influence functions, summed
  within clusters when there are clusters (the usual cluster-robust form of the
  influence-function variance; Callaway & Sant'Anna 2021, Section 4);
* :class:`InfluenceBlocks` and :class:`InfluenceResult`: the influence functions kept on a
  result, so that ``result.with_inference(method, cluster=...)`` recomputes the variance
  without refitting: one-way cluster sums, or two-way ``V_1 + V_2 - V_12`` (Cameron,
  Gelbach & Miller 2011), on any column of the data or a Series of labels by unit.

Written by hand: small pieces of bookkeeping no library provides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from ..errors import EstimationError, SpecError
from ..inference.bootstrap import cluster_sums, min_clusters
from ..panel import Panel, _v
from ..results import EstimationResult, check_choice, without_level_records
from . import callaway_santanna as _cs

__all__ = [
    "InfluenceBlocks",
    "InfluenceResult",
    "TablesResult",
    "cluster_name",
    "clustered_variance",
    "covariate_column",
    "influence_vcov",
]


@dataclass(frozen=True)
class TablesResult(EstimationResult):
    """An :class:`EstimationResult` whose run-directory tables are the fields in ``ARTIFACTS``."""

    #: names of the DataFrame fields saved as CSV tables by a run
    ARTIFACTS: ClassVar[tuple[str, ...]] = ()

    def artifacts(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in self.ARTIFACTS}


def covariate_column(panel: Panel, name: str | None, role: str, hint: str = "") -> str | None:
    """``name`` if it is a covariate of ``panel`` (or None); else a :class:`SpecError`
    naming the ``role`` ("Dose", "Weight"...), the covariates available and ``hint``."""
    if name is not None and name not in panel.covariates:
        raise SpecError(
            f"{role} column {name!r} is not a covariate of the panel (covariates: "
            f"{list(panel.covariates)}){hint}."
        )
    return name


def influence_vcov(
    psi: np.ndarray, cluster: Any = None, n: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Covariance ``S' S / n^2`` and standard errors of the columns of ``psi``.

    Parameters
    ----------
    psi : ndarray (units, terms)
        Influence functions (``n = 1``: already on the contribution scale, ``se =
        sqrt(sum_i psi_i^2)``).
    cluster : array-like, optional
        Cluster label per row: ``S`` holds the within-cluster sums; None: ``S = psi``.
    n : float
        Scale of the influence functions.
    """
    meat = psi if cluster is None else pd.DataFrame(psi).groupby(cluster).sum().to_numpy()
    vcov = meat.T @ meat / n**2
    return vcov, np.sqrt(np.clip(np.diag(vcov), 0, None))


@dataclass(frozen=True)
class InfluenceBlocks:
    """The influence functions a result keeps for :meth:`InfluenceResult.with_inference`.

    Attributes
    ----------
    psi : ndarray (rows, columns)
        Influence-function basis: one row per unit (panel estimators) or per observation
        (repeated cross-sections).
    amat : ndarray (columns, terms) or None
        The terms' influence functions are ``psi @ amat`` (None: ``psi`` itself).
    n : float
        Scale: ``V = A' S' S A / n^2`` with ``S`` the cluster sums of ``psi``.
    ids : ndarray
        Unit id of each row (the index a cluster Series is looked up by).
    panel : Panel, optional
        Unit-level rows: the panel whose columns (or geography) give cluster labels.
    frame : DataFrame, optional
        Observation-level rows: the rows of the data, whose columns give cluster labels.
    labels : list of ndarray
        Row cluster labels the fit used (empty: each row is its own cluster).
    """

    psi: np.ndarray
    amat: np.ndarray | None
    n: float
    ids: np.ndarray
    panel: Panel | None = None
    frame: pd.DataFrame | None = None
    labels: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        # read-only views: the kept influence functions cannot be changed through a result
        for name in ("psi", "amat"):
            value = getattr(self, name)
            if value is not None:
                view = np.asarray(value, dtype=float).view()
                view.setflags(write=False)
                object.__setattr__(self, name, view)

    def rescaled(self, c: float) -> InfluenceBlocks:
        """The blocks for the outcome multiplied by ``c`` (influence functions scale)."""
        return InfluenceBlocks(
            self.psi * c, self.amat, self.n, self.ids, self.panel, self.frame, self.labels
        )

    def row_labels(self, cluster: Any) -> tuple[np.ndarray, ...]:
        """Cluster labels per row for each clustering dimension (at most two): column
        names of the data (or the panel's geography), or pandas Series indexed by unit."""
        if cluster is None:
            return ()
        dims = list(cluster) if isinstance(cluster, list | tuple) else [cluster]
        if not 1 <= len(dims) <= 2:
            raise SpecError(
                f"cluster takes one column or a list of two (two-way clustering); received "
                f"{len(dims)}."
            )
        if self.frame is None:
            return tuple(_cs._unit_labels(self.panel, dims, self.ids))
        return tuple(self._frame_labels(dim) for dim in dims)

    def _frame_labels(self, dim: Any) -> np.ndarray:
        assert self.frame is not None
        if isinstance(dim, pd.Series):
            labels = _cs.labels_by_unit(dim).reindex(self.ids)
            what = f"Cluster labels {dim.name!r} have no value for unit"
        elif isinstance(dim, str) and dim in self.frame.columns:
            labels = self.frame[dim]
            what = f"Cluster column {dim!r} is missing for unit"
        else:
            raise SpecError(
                f"Cluster variable {dim!r} is not a column of the data "
                f"{list(self.frame.columns)}; pass a column name or a Series indexed by unit."
            )
        miss = pd.isna(labels.to_numpy())
        if miss.any():
            i = int(np.flatnonzero(miss)[0])
            raise SpecError(f"{what} {_v(self.ids[i])!r} (row {i}); every row needs a cluster.")
        return _cs.whole_labels(labels.to_numpy())


def clustered_variance(
    blocks: InfluenceBlocks, labels: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the terms and variances of the basis columns from the kept
    influence functions: ``A' (S'S / n^2) A`` with ``S`` the rows of ``psi`` (no labels),
    their cluster sums (one dimension) or ``V_1 + V_2 - V_12`` (two dimensions)."""
    psi = blocks.psi
    if not labels:
        srcs = [(psi, 1.0)]
    elif len(labels) == 1:
        srcs = [(cluster_sums(psi, labels[0]), 1.0)]
    else:
        both = pd.factorize(pd.MultiIndex.from_arrays([labels[0], labels[1]]))[0]
        srcs = [
            (cluster_sums(psi, labels[0]), 1.0),
            (cluster_sums(psi, labels[1]), 1.0),
            (cluster_sums(psi, both), -1.0),
        ]
    meat = sum(sign * (src.T @ src) / blocks.n**2 for src, sign in srcs)
    meat = np.asarray(meat)
    vcov = meat if blocks.amat is None else blocks.amat.T @ meat @ blocks.amat
    return vcov, np.diag(meat).copy()


def cluster_name(cluster: Any) -> str | None:
    """How ``info["cluster"]`` names a clustering (columns joined by ``+``)."""
    if cluster is None or isinstance(cluster, str):
        return cluster
    if isinstance(cluster, list | tuple):
        return "+".join(str(getattr(c, "name", c)) for c in cluster)
    return str(getattr(cluster, "name", "user labels"))


@dataclass(frozen=True)
class InfluenceResult(TablesResult):
    """A :class:`TablesResult` keeping its influence functions (``blocks``), so that
    :meth:`with_inference` changes the variance without re-estimating. Each estimator
    supplies :meth:`_reinferred`, which rebuilds its SEs from the new covariance."""

    #: inference methods :meth:`with_inference` accepts
    INFERENCE_METHODS: ClassVar[tuple[str, ...]] = ("analytic",)

    blocks: InfluenceBlocks | None = field(default=None, repr=False, compare=False)

    def with_inference(
        self,
        method: str = "analytic",
        *,
        cluster: Any = None,
        n_boot: int = 999,
        rng: np.random.Generator | int | None = None,
        boot_weights: str = "rademacher",
        n_jobs: int = 1,
    ) -> Self:
        """The same estimates with another variance, from the kept influence functions.

        Parameters
        ----------
        method : str
            ``"analytic"`` (influence-function covariance) or, where the estimator offers
            it, ``"bootstrap"`` (multiplier bootstrap with uniform bands).
        cluster : str, pandas.Series, or a list of two of them, optional
            Column names of the data, or labels as a Series indexed by unit; two entries
            cluster two ways (``V_1 + V_2 - V_12``; analytic only). None: by unit (by
            observation for repeated cross-sections).
        n_boot, rng, boot_weights : optional
            Bootstrap draws, their generator (or seed) and distribution.
        n_jobs : int
            Threads for the bootstrap draws (the draws do not depend on it).

        Returns
        -------
        A new result of the same type; this one is unchanged.
        """
        if self.blocks is None:
            raise EstimationError(
                f"This {type(self).__name__} keeps no influence functions (it was not made "
                "by its estimator's fit); refit to change the inference."
            )
        check_choice(method, "method", self.INFERENCE_METHODS)
        labels = self.blocks.row_labels(cluster)
        if method == "bootstrap" and len(labels) > 1:
            raise SpecError(
                "The multiplier bootstrap clusters on one dimension; use method='analytic' "
                "for two-way clustering."
            )
        vcov, col_var = clustered_variance(self.blocks, labels)
        info = {
            **without_level_records(self.info),
            "cluster": cluster_name(cluster),
            "n_clusters": min_clusters(labels),
        }
        boot = {"n_boot": n_boot, "rng": rng, "boot_weights": boot_weights, "n_jobs": n_jobs}
        return self._reinferred(vcov, col_var, labels, info, method, boot)

    def _reinferred(
        self,
        vcov: np.ndarray,
        col_var: np.ndarray,
        labels: tuple[np.ndarray, ...],
        info: dict[str, Any],
        method: str,
        boot: dict[str, Any],
    ) -> Self:
        raise NotImplementedError
