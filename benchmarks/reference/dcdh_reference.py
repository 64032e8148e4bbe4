"""Reference numbers for the de Chaisemartin-D'Haultfoeuille DID_l estimator, from moderndid.

moderndid 0.2's ``did_multiplegt`` is a Python port of R/Stata ``DIDmultiplegtDYN``. Two
inputs:

* ``sim``: one seeded draw of ``benchmarks/mc_designs.simulate_switching`` (a binary
  treatment switched on and off; 300 groups, 10 periods; seed 2026), for switchers in and
  switchers out separately, 4 effects and 2 placebos, analytic SEs; also normalized
  (``DID^n_l``) and with cell weights ``w = 1 + (unit mod 3) + 0.1 time``. moderndid 0.2 does not
  multiply the switchers-out differences by ``S_g = -1`` (dCDH 2024 eq. 4), so its
  ``switchers="out"`` numbers are the negatives of DID_l; its pooled ``switchers=""``
  estimate mixes signed and unsigned terms and is not used.
* ``favara_imbs``: the data of the ``DIDmultiplegtDYN`` documentation (Favara & Imbs 2015,
  shipped with moderndid), ``effects=8, placebo=3``, unclustered and clustered by state.
  The tests use these only when moderndid is installed (the data are not in the repo).

diff-diff 3.13's ``ChaisemartinDHaultfoeuille`` drops groups whose treatment changes more
than once (``drop_larger_lower``), so on this design it estimates a different sample;
it is not used as a reference.

Run:  python benchmarks/reference/dcdh_reference.py
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _run(df, **kw) -> dict:
    import moderndid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = moderndid.did_multiplegt(df, **kw)
    return {
        "effects": [float(v) for v in r.effects.estimates],
        "effects_se": [float(v) for v in r.effects.std_errors],
        "effects_n_switchers": [int(v) for v in r.effects.n_switchers],
        "placebos": [float(v) for v in r.placebos.estimates],
        "placebos_se": [float(v) for v in r.placebos.std_errors],
        "placebos_n_switchers": [int(v) for v in r.placebos.n_switchers],
        "ate": float(r.ate.estimate),
        "ate_se": float(r.ate.std_error),
    }


def main() -> None:
    import mc_designs
    import moderndid

    sim = mc_designs.simulate_switching(np.random.default_rng(2026))
    out: dict = {"sim": {}, "favara_imbs": {}}
    for sw in ("in", "out"):
        out["sim"][sw] = _run(
            sim,
            yname="y",
            idname="unit",
            tname="time",
            dname="d",
            effects=4,
            placebo=2,
            switchers=sw,
        )
        print("sim", sw, np.round(out["sim"][sw]["effects"], 6))
    out["sim"]["in_normalized"] = _run(
        sim,
        yname="y",
        idname="unit",
        tname="time",
        dname="d",
        effects=4,
        placebo=2,
        switchers="in",
        normalized=True,
    )
    print("sim in normalized", np.round(out["sim"]["in_normalized"]["effects"], 6))
    # cell weights N_{g,t} varying by group and period (DIDmultiplegtDYN's weight)
    simw = sim.assign(w=1 + sim["unit"] % 3 + 0.1 * sim["time"])
    out["sim"]["in_weighted"] = _run(
        simw,
        yname="y",
        idname="unit",
        tname="time",
        dname="d",
        effects=4,
        placebo=2,
        switchers="in",
        weightsname="w",
    )
    print("sim in weighted", np.round(out["sim"]["in_weighted"]["effects"], 6))
    fav = moderndid.load_favara_imbs()
    for cl in (None, "state_n"):
        key = "clustered_state" if cl else "unclustered"
        out["favara_imbs"][key] = _run(
            fav,
            yname="Dl_vloans_b",
            idname="county",
            tname="year",
            dname="inter_bra",
            effects=8,
            placebo=3,
            cluster=cl,
        )
        print("favara", key, np.round(out["favara_imbs"][key]["effects"], 6))
    out["_meta"] = {
        "tool": "moderndid",
        "version": version("moderndid"),
        "sim": "mc_designs.simulate_switching(np.random.default_rng(2026))",
        "se": "analytic",
    }
    path = HERE / "dcdh_moderndid.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
