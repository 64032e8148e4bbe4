"""Synthetic-control inputs that a breaker (session 20) found moving numbers without a word:
outcomes or predictors at a large level, a user's tuning constants on a rescaled outcome,
0/0 placebo ratios, covariates in other units, mixed or colliding unit labels, lambda = 0.
Each test fails on the code before (``git show 329768a``).

Tolerances: adding 1e7 to outcomes of order 100 leaves about 1e-9 of their digits, so
estimates that are exactly shift-invariant in arithmetic agree to 1e-6 (with room for the
solvers' own stopping rules); exact rescalings by powers of ten agree to 1e-9 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import CANONICAL, needs_data

from zoneimpact import Panel
from zoneimpact.estimators import augmented_sc, synthetic_control, synthetic_did
from zoneimpact.inference.conformal import conformal_inference
from zoneimpact.inference.scpi import scpi_intervals

PROP99 = "canonical/california_prop99.csv"
ADH = "canonical/smoking_adh_covariates.csv"
Y = "PacksPerCapita"


def _prop99(shift: float = 0.0, scale: float = 1.0) -> Panel:
    df = pd.read_csv(CANONICAL / "california_prop99.csv", sep=";")
    df["g"] = np.where(df["State"] == "California", 1989, 0)
    df[Y] = df[Y] * scale + shift
    return Panel.from_frame(df, unit="State", time="Year", outcomes=Y, cohort="g")


def _factor(seed: int = 0, J: int = 15, T: int = 20, T0: int = 14, n_tr: int = 1, effect=0.0):
    """A two-factor panel (donors u00.., treated last) with a known effect."""
    rng = np.random.default_rng(seed)
    N = J + n_tr
    Yv = 10 + rng.uniform(0, 1, (N, 2)) @ np.cumsum(rng.normal(0, 1, (T, 2)), axis=0).T
    Yv += rng.normal(0, 0.3, (N, T))
    g = np.r_[np.zeros(J), np.full(n_tr, T0)]
    Yv += effect * ((np.arange(T)[None, :] >= g[:, None]) & (g[:, None] > 0))
    units = [f"u{i:02d}" for i in range(N)]
    return pd.DataFrame(
        {"unit": np.repeat(units, T), "time": np.tile(np.arange(T), N), "y": Yv.ravel(),
         "g": np.repeat(g, T)}
    )  # fmt: skip


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")


def _att(res) -> float:
    return float(res.terms["estimate"].iloc[0])


@needs_data(PROP99)
def test_a_level_added_to_the_outcome_moves_no_sc_estimate() -> None:
    """Prop 99 + 1e7 moved SC (SDID method='sc') by 0.19, ADH by 6.7, ASC by 7.4."""
    fits = {
        "sc": lambda p: synthetic_did.fit(p, outcome=Y, method="sc", se_method=None),
        "adh": lambda p: synthetic_control.fit(p, outcome=Y, placebos=False, rng=1),
        "asc": lambda p: augmented_sc.fit(p, outcome=Y, lambda_=430.0, se=False),
    }
    for name, fit in fits.items():
        base, moved = _att(fit(_prop99())), _att(fit(_prop99(shift=1e7)))
        assert moved == pytest.approx(base, abs=1e-6), name
    # the published SC number (Arkhangelsky et al. 2021, Table 1: -19.6) at any level
    assert _att(fits["sc"](_prop99(shift=1e6))) == pytest.approx(-19.62, abs=0.005)


@needs_data(ADH)
def test_a_predictor_in_levels_leaves_the_adh_weights() -> None:
    """lnincome (sd 0.14) + 1e5 moved the ATT by 1.52 and a weight by 0.20."""
    d = pd.read_csv(CANONICAL / "smoking_adh_covariates.csv")
    d["year"] = d["year"].astype(int)
    d["g"] = np.where(d["state"] == "California", 1989, 0)
    preds = [
        {"variable": "lnincome", "window": [1980, 1988]},
        {"variable": "retprice", "window": [1980, 1988]},
        {"variable": "cigsale", "years": [1975]},
        {"variable": "cigsale", "years": [1988]},
    ]

    def fit(frame):
        p = Panel.from_frame(
            frame, unit="state", time="year", outcomes="cigsale", cohort="g",
            covariates=["lnincome", "retprice"],
        )  # fmt: skip
        return synthetic_control.fit(p, outcome="cigsale", predictors=preds, placebos=False, rng=1)

    a, b = fit(d), fit(d.assign(lnincome=d["lnincome"] + 1e5))
    assert _att(b) == pytest.approx(_att(a), abs=1e-6)
    np.testing.assert_allclose(b.donor_weights, a.donor_weights, atol=1e-6)


def test_the_placebo_p_value_counts_undefined_ratios_against_the_treated_unit() -> None:
    """A donor identical to the treated unit and no effect: the treated ratio is 0/0 and
    p was 0.0, below the smallest permutation p-value 1/16."""
    d = _factor(0)
    d.loc[d["unit"] == "u03", "y"] = d.loc[d["unit"] == "u15", "y"].to_numpy()
    with pytest.warns(UserWarning, match="0/0"):
        res = synthetic_control.fit(_panel(d), outcome="y", rng=1)
    assert res.p_value == 1.0  # no gap at all: as null as a result can be


@needs_data(PROP99)
def test_tuning_constants_follow_an_internally_rescaled_outcome() -> None:
    """zeta_omega and lambda_ are in the outcome's units; at 1e18 the outcome is rescaled
    inside and the user's values were not: SDID -16.54 became -19.77."""
    s = 1e18
    base = synthetic_did.fit(_prop99(), outcome=Y, zeta_omega=20.0, se_method=None)
    big = synthetic_did.fit(_prop99(scale=s), outcome=Y, zeta_omega=20.0 * s, se_method=None)
    assert big.info["outcome_rescaled_by"] != 1.0
    assert _att(big) / s == pytest.approx(_att(base), rel=1e-9)
    assert big.info["zeta_omega"] / s == pytest.approx(20.0, rel=1e-12)
    a = augmented_sc.fit(_prop99(), outcome=Y, lambda_=430.0, se=False)
    b = augmented_sc.fit(_prop99(scale=s), outcome=Y, lambda_=430.0 * s**2, se=False)
    assert _att(b) / s == pytest.approx(_att(a), rel=1e-9)


@pytest.mark.parametrize("change", [("mul", 1e-12), ("mul", 1e12), ("add", 1e11)])
def test_sdid_covariate_units_do_not_matter(change) -> None:
    """x * 1e-12 and x + 1e11 were refused as 'does not vary'."""
    d = _factor(2, J=20, T=16, T0=10, effect=1.0)
    d["x"] = np.random.default_rng(3).normal(size=len(d))
    d["y"] += 0.6 * d["x"]
    kind, v = change
    d2 = d.assign(x=d["x"] * v if kind == "mul" else d["x"] + v)
    fit = [
        synthetic_did.fit(
            Panel.from_frame(
                f, unit="unit", time="time", outcomes="y", cohort="g", covariates=["x"]
            ),
            outcome="y",
            covariates=["x"],
            se_method=None,
        )  # fmt: skip
        for f in (d, d2)
    ]
    # x + 1e11 keeps ~5 of x's 16 digits: the input's own rounding, about 1e-6 of the ATT
    assert _att(fit[1]) == pytest.approx(_att(fit[0]), abs=1e-5)


def test_labels_that_collide_or_mix_types() -> None:
    d = _factor(1, n_tr=3, effect=2.0)
    base = synthetic_control.fit(_panel(d), outcome="y", rng=1)
    named = d.assign(unit=d["unit"].replace({"u00": "treated"}))
    res = synthetic_control.fit(_panel(named), outcome="y", rng=1)  # raised a ValueError
    assert _att(res) == pytest.approx(_att(base), abs=1e-10)
    assert res.p_value == pytest.approx(base.p_value)
    mixed = _factor(4)
    mixed["unit"] = mixed["unit"].map(lambda u: int(u[1:]) if u < "u05" else u).astype(object)
    for method in ("sdid", "sc"):  # a bare TypeError sorting the unit weights
        r = synthetic_did.fit(_panel(mixed), outcome="y", method=method, se_method=None)
        assert len(r.unit_weights) == 15 and r.unit_weights.sum() == pytest.approx(1.0)


def test_asc_with_lambda_zero_and_few_donors_is_the_ridge_limit() -> None:
    """J = 14 donors, 14 pre-periods: lambda = 0 gave ATT -787.5 (true 0); now the
    minimum-norm limit of the ridge path, equal to a tiny lambda's."""
    d = _factor(5, J=14, T=20, T0=14)
    zero = augmented_sc.fit(_panel(d), outcome="y", lambda_=0.0, se=False)
    tiny = augmented_sc.fit(_panel(d), outcome="y", lambda_=1e-6, se=False)
    assert abs(_att(zero)) < 2.0
    assert _att(zero) == pytest.approx(_att(tiny), abs=1e-3)


@needs_data(PROP99)
def test_scpi_and_conformal_are_shift_and_scale_equivariant() -> None:
    """SCPI: + 1e4 moved the ATT's upper bound from -3.5 to 73 and x 1e6 to +6.4 (the
    in-sample Gram and the statsmodels quantile regressions at the outcome's level);
    conformal: + 1e8 moved the joint p from 0.097 to 0.226, x 1e-12 shrank the interval."""
    base = scpi_intervals(_prop99(), outcome=Y, sims=60, rng=3).table.set_index("term")
    for shift, scale in ((1e4, 1.0), (0.0, 1e-6), (0.0, 1e6)):
        t = scpi_intervals(_prop99(shift, scale), outcome=Y, sims=60, rng=3).table
        t = t.set_index("term")
        for col in ("effect", "effect_low", "effect_high", "in_low", "in_high", "e_low"):
            np.testing.assert_allclose(t[col] / scale, base[col], rtol=1e-6, atol=1e-6, err_msg=col)
    p0 = _prop99()
    r0 = synthetic_control.fit(p0, outcome=Y, placebos=False, rng=1, v="equal")
    c0 = conformal_inference(r0, p0, n_grid=20).table.set_index("term")
    for shift, scale in ((1e8, 1.0), (0.0, 1e-12)):
        p = _prop99(shift, scale)
        r = synthetic_control.fit(p, outcome=Y, placebos=False, rng=1, v="equal")
        c = conformal_inference(r, p, n_grid=20).table.set_index("term")
        np.testing.assert_allclose(c["p_value"], c0["p_value"])
        np.testing.assert_allclose(c["ci_low"] / scale, c0["ci_low"], rtol=1e-6)
        np.testing.assert_allclose(c["ci_high"] / scale, c0["ci_high"], rtol=1e-6)


@needs_data(PROP99)
def test_scpi_sigma_is_in_the_outcome_units_to_the_fourth() -> None:
    a = scpi_intervals(_prop99(), outcome=Y, sims=10, rng=1)
    b = scpi_intervals(_prop99(scale=1e25), outcome=Y, sims=10, rng=1)
    np.testing.assert_allclose(b.sigma.to_numpy() / 1e100, a.sigma.to_numpy(), rtol=1e-9)


def test_predictors_past_the_treatment_start_warn() -> None:
    """A true effect of 5 read 0.07 with the outcome of a post period as a predictor."""
    d = _factor(0, effect=5.0)
    with pytest.warns(UserWarning, match=r"from the treatment start on") as rec:
        synthetic_control.fit(
            _panel(d), outcome="y", predictors=[{"variable": "y", "years": [18]}],
            placebos=False, rng=1,
        )  # fmt: skip
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthetic_control.fit(
            _panel(d), outcome="y", predictors=[{"variable": "y", "years": [12]}],
            placebos=False, rng=1,
        )  # fmt: skip


def test_matrix_completion_lambda_follows_an_internally_rescaled_outcome() -> None:
    """lambda_ is in outcome units: at 2^70 the outcome is rescaled inside and lambda_
    was not (ATT/scale 0.252 against 0.540; a reviewer's check)."""
    from zoneimpact.estimators import matrix_completion

    d = _factor(6, J=20, T=16, T0=10, effect=0.5)

    def fit(s):
        p = _panel(d.assign(y=d["y"] * s))
        return matrix_completion.fit(p, outcome="y", lambda_=0.5 * s, se_method=None)

    base, big = fit(1.0), fit(2.0**70)
    assert big.info["outcome_rescaled_by"] != 1.0
    assert _att(big) / 2.0**70 == pytest.approx(_att(base), rel=1e-9)


def test_one_donor_says_why_there_is_no_placebo_p_value() -> None:
    with pytest.warns(UserWarning, match="at least 2 donors") as rec:
        res = synthetic_control.fit(_panel(_factor(0, J=1)), outcome="y", rng=1)
    assert np.isnan(res.p_value) and rec[0].filename == __file__
