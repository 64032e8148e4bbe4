"""Reference numbers for Poisson ETWFE with a covariate (Wooldridge 2023, Section 6.2),
written to ``etwfe_poisson_covariates.json`` beside this script.

Data: R did's mpdta (``shared/data/canonical/mpdta.csv``) with ``emp = exp(lemp)``
(employment in levels, the count-like outcome, as in ``designs_reference.py``) and the
county's log population ``lpop`` (constant within county) as the covariate.

Peer: diff-diff 3.13 ``WooldridgeDiD(method="poisson", control_group="not_yet_treated")``
with ``exovar=["lpop"]`` (Stata ``jwdid emp lpop, ivar(countyreal) tvar(year)
gvar(first_treat) method(poisson)``): pooled Poisson QMLE with cohort and year effects, the
post-treatment cell dummies, each cell dummy times ``lpop`` centred at its cohort mean,
``lpop`` times each cohort and each year dummy, and ``lpop``; ATT(g,t) is the cell's mean of
``exp(eta) - exp(eta - delta)`` with the cell's whole treatment block switched off (its
eq. 3.15/5.5), delta-method SEs clustered by county.

Run:  python benchmarks/reference/etwfe_poisson_covariates_reference.py
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "canonical" / "mpdta.csv"
OUT = HERE / "etwfe_poisson_covariates.json"


def main() -> None:
    from diff_diff import WooldridgeDiD

    df = pd.read_csv(DATA)
    df = df.assign(emp=np.exp(df["lemp"]))
    with warnings.catch_warnings():
        # a warning in the fit (e.g. a dropped collinear column) would change the model
        warnings.simplefilter("error")
        r = WooldridgeDiD(method="poisson", control_group="not_yet_treated").fit(
            df,
            outcome="emp",
            unit="countyreal",
            time="year",
            first_treat="first.treat",
            exovar=["lpop"],
        )
    r.aggregate("event_study")
    r.aggregate("group")
    out = {
        "source": (
            f"diff-diff {version('diff-diff')} WooldridgeDiD(method='poisson', "
            "control_group='not_yet_treated').fit(mpdta, outcome='emp', exovar=['lpop'])"
        ),
        "overall": {"att": float(r.overall_att), "se": float(r.overall_se)},
        "att_gt": [
            {"cohort": int(g), "time": int(t), "att": float(v["att"]), "se": float(v["se"])}
            for (g, t), v in r.group_time_effects.items()
        ],
        "event": {
            str(int(k)): {"att": float(v["att"]), "se": float(v["se"])}
            for k, v in r.event_study_effects.items()
        },
        "group": {
            str(int(k)): {"att": float(v["att"]), "se": float(v["se"])}
            for k, v in r.group_effects.items()
        },
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["overall"]))


if __name__ == "__main__":
    main()
