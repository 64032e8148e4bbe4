"""Results built from unit-level influence functions (private helper).

Shared by the estimators whose terms are averages of unit-level influence functions and
whose extra outputs are tables (de Chaisemartin & D'Haultfoeuille's ``DID_l``, Callaway,
Goodman-Bacon & Sant'Anna's dose-response curves):

* :class:`TablesResult`: a frozen :class:`~zoneimpact.results.EstimationResult` whose
  ``artifacts()`` are the DataFrame fields named in ``ARTIFACTS``;
* :func:`covariate_column`: the check that an option names a covariate of the panel;
* :func:`influence_vcov`: ``V = S' S / n^2`` with ``S`` the influence functions, summed
  within clusters when there are clusters (the usual cluster-robust form of the
  influence-function variance; Callaway & Sant'Anna 2021, Section 4).

Written by hand: three small pieces of bookkeeping no library provides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..panel import Panel
from ..results import EstimationResult

__all__ = ["TablesResult", "covariate_column", "influence_vcov"]


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
