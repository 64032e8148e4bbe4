"""Reference numbers from the Python peers, for the tests that must run without them.

The test suite checks every estimator against the numbers in ``peers.json`` beside this
script on every run (CI installs only the ``test`` extra, not the peers). This script is
how those numbers were made: it runs the peer packages of the ``compare`` extra on the
same data the tests use and writes ``peers.json`` with the peers' versions. The live
comparisons (``test_peer_*_if_installed``) still run when the peers are installed.

Peers and what they provide:

* diff-diff ``BaconDecomposition``, ``ImputationDiD``, ``SunAbraham`` on R did's mpdta
  (``shared/data/canonical/mpdta.csv``), and ``ImputationDiD(aux_partition="cohort")`` on
  mpdta without 15% of its rows (:func:`unbalanced_mpdta`);
* diff-diff ``SyntheticDiD(variance_method="jackknife")``, documented as matching R
  ``synthdid::vcov(method = "jackknife")`` (Arkhangelsky et al. 2021, Algorithm 3), on the
  five-treated factor panel of ``tests/test_synthetic_did.py::factor_panel`` (seed 11);
* pyfixest ``feols`` with CRV1 standard errors on the unbalanced city panel of
  ``tests/test_twfe_scale.py::make_frame``.

Run (needs ``pip install -e ".[test,compare]"`` and the data directory):

    python benchmarks/reference/peer_references.py
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import SHARED_DATA  # noqa: E402
from test_synthetic_did import factor_panel  # noqa: E402
from test_twfe_scale import make_frame  # noqa: E402


def _mpdta() -> pd.DataFrame:
    df = pd.read_csv(SHARED_DATA / "canonical" / "mpdta.csv")
    return df.assign(ft=df["first.treat"])


def bacon(df: pd.DataFrame) -> dict:
    from diff_diff import BaconDecomposition

    ref = BaconDecomposition().fit(
        df, outcome="lemp", unit="countyreal", time="year", first_treat="ft"
    )
    return {
        "comparisons": [
            {
                "treated": int(c.treated_group),
                "control": "never" if c.control_group == "never_treated" else int(c.control_group),
                "weight": float(c.weight),
                "estimate": float(c.estimate),
            }
            for c in ref.comparisons
        ]
    }


def _event_effects(effects: dict) -> dict:
    return {
        str(int(e)): {"estimate": float(v["effect"]), "se": float(v["se"])}
        for e, v in effects.items()
    }


def imputation(df: pd.DataFrame) -> dict:
    from diff_diff import ImputationDiD

    ref = ImputationDiD().fit(
        df,
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treat="ft",
        aggregate="event_study",
    )
    return {
        "att": float(ref.overall_att),
        "att_se": float(ref.overall_se),
        "event": _event_effects(ref.event_study_effects),
    }


def unbalanced_mpdta(df: pd.DataFrame) -> pd.DataFrame:
    """mpdta without about 15% of its rows (seed 7): units then hold different numbers of
    rows in a cohort, where BJS's eq. 8 ``tau~`` differs from a plain cell mean."""
    keep = np.random.default_rng(7).uniform(size=len(df)) > 0.15
    return df[keep].reset_index(drop=True)


def imputation_aux_cohort(df: pd.DataFrame) -> dict:
    """ImputationDiD's Theorem 3 SEs with ``tau~`` averaged by cohort (eq. 8), with and
    without the leave-one-out refinement, on the unbalanced mpdta."""
    from diff_diff import ImputationDiD

    out = {}
    for loo in (False, True):
        ref = ImputationDiD(aux_partition="cohort", leave_one_out=loo).fit(
            unbalanced_mpdta(df),
            outcome="lemp",
            unit="countyreal",
            time="year",
            first_treat="ft",
            aggregate="event_study",
        )
        out["leave_out" if loo else "plain"] = {
            "att": float(ref.overall_att),
            "att_se": float(ref.overall_se),
            "event": _event_effects(ref.event_study_effects),
        }
    return out


def sun_abraham(df: pd.DataFrame) -> dict:
    from diff_diff import SunAbraham

    ref = SunAbraham(control_group="never_treated").fit(
        df, outcome="lemp", unit="countyreal", time="year", first_treat="ft"
    )
    return {"event": _event_effects(ref.event_study_effects)}


def sdid_jackknife() -> dict:
    from diff_diff import SyntheticDiD

    df = factor_panel(np.random.default_rng(11), n_donors=25, n_treated=5)
    df["treat"] = (df["g"] > 0).astype(int)
    post = sorted(df.loc[df["g"] > 0, "g"].unique().astype(int))
    periods = [t for t in sorted(df["time"].unique()) if t >= post[0]]
    r = SyntheticDiD(variance_method="jackknife").fit(
        df, outcome="y", treatment="treat", unit="unit", time="time", post_periods=periods
    )
    return {
        "panel": "tests/test_synthetic_did.py::factor_panel(default_rng(11), 25, 5)",
        "att": float(r.att),
        "se": float(r.se),
    }


def fixest() -> dict:
    import pyfixest as pf

    frame = make_frame()
    out = {}
    for fes, formula in (
        ("unit+time", "y ~ d | city + year"),
        ("unit+time+region:time", "y ~ d | city + year + ry"),
    ):
        for cluster, col in (("unit", "city"), ("region", "region")):
            fit = pf.feols(formula, frame, vcov={"CRV1": col})
            out[f"{fes}|{cluster}"] = {
                "formula": formula,
                "estimate": float(fit.coef()["d"]),
                "se": float(fit.se()["d"]),
            }
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    df = _mpdta()
    ref = {
        "_meta": {
            "generator": "benchmarks/reference/peer_references.py",
            "versions": {p: version(p) for p in ("diff-diff", "pyfixest", "numpy", "pandas")},
            "data": "shared/data/canonical/mpdta.csv (R did's mpdta)",
        },
        "bacon_mpdta": bacon(df),
        "imputation_mpdta": imputation(df),
        "imputation_mpdta_unbalanced_aux_cohort": imputation_aux_cohort(df),
        "sun_abraham_mpdta": sun_abraham(df),
        "sdid_jackknife_factor_panel": sdid_jackknife(),
        "fixest_ssc": fixest(),
    }
    path = HERE / "peers.json"
    path.write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
