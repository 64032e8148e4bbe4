"""A claims run records the warnings its fits raise, as an estimate run does: in
``warnings.json``, in the manifest and on the report page, under each estimate's name.
Before, a claims run wrote ``warnings.json`` as ``{}`` (and the manifest ``"warnings": {}``)
whatever its fits warned."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from zoneimpact import cli

#: the claim's own spillover fit: its only treated unit sits in one region (cluster), so
#: every piece of the decomposition warns (estimators/spillover.py)
ONE_CLUSTER = "every target unit-period sits in one cluster"
#: the linked spec's and the breakdown block's fits on the same panel (covariance.py)
FEW_CLUSTERS = "The treatment is carried by only 1 cluster"

#: 40 simulated units, zone_share 0.04: exactly one zone unit (checked below)
DATA = """seed = 7
[data]
source = "simulate"
outcomes = ["fdi"]
[data.simulate]
n_units = 40
n_regions = 3
first_year = 2000
last_year = 2010
waves = {"2005" = 1.0}
zone_share = 0.04
"""
SPEC = (
    'title = "one zone"\n'
    + DATA
    + '[[estimate]]\nname = "own"\nestimator = "twfe"\noutcome = "fdi"\n'
    + '[claims]\nfile = "c.toml"\nlinked_specs = true\nbreakdown_from = "own"\n'
    + '[claims.spillover]\nn_boot = 0\nexposure = "region"\n'
)
LINKED = (
    'title = "linked"\n'
    + DATA
    + '[[estimate]]\nname = "twfe"\nestimator = "twfe"\noutcome = "fdi"\n'
)
CLAIMS = """[[claim]]
id = "zones_raise_fdi"
document = "doc"
quote = "q"
hypothesis = "Zones raise FDI"
outcomes = ["fdi"]
estimand = "direct"
margin = 0.1
margin_unit = "absolute"

[[claim]]
id = "linked_twfe"
document = "doc"
quote = "q"
hypothesis = "Zones raise FDI (TWFE)"
estimand = "direct"
test = "positive"
margin = 0.1
margin_unit = "absolute"
spec = "linked.toml"
estimate = "twfe"
term = "att"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The claims run written twice through the command line in one process: with the
    console's default filter, then with the caller ignoring warnings."""
    folder = tmp_path_factory.mktemp("claims")
    (folder / "c.toml").write_text(CLAIMS)
    (folder / "linked.toml").write_text(LINKED)
    (folder / "s.toml").write_text(SPEC)
    out = []
    for k, action in enumerate(("default", "ignore")):
        target = folder / f"run{k}"
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter(action)
            args = ["claims", "--spec", str(folder / "s.toml"), "--out", str(target)]
            assert cli.main([*args, "--quiet"]) == 0
        out.append((target, [str(w.message) for w in shown]))
    return out


def _saved(root: Path) -> dict[str, list[dict[str, str]]]:
    return json.loads((root / "warnings.json").read_text(encoding="utf-8"))


def test_claims_fits_warnings_reach_the_run_files(runs) -> None:
    root, shown = runs[0]
    results = json.loads((root / "results.json").read_text(encoding="utf-8"))["results"]
    # exactly one zone unit in the simulated panel: the warnings below are about that
    report = json.loads((root / "data_report.json").read_text(encoding="utf-8"))
    assert report["panel"]["cohort_sizes"] == {"2005": 1, "never": 39}
    saved = _saved(root)
    # keyed by the estimate names of results.json: the claim's own fit, the linked spec's
    # block (<spec stem>_<block>) and the breakdown block, in fitting order
    assert list(saved) == ["data_fdi", "linked_twfe", "own"]
    assert set(saved) <= {r["name"] for r in results}
    pieces = [w["message"] for w in saved["data_fdi"] if ONE_CLUSTER in w["message"]]
    assert [p.split("'")[1] for p in pieces] == ["direct", "spillover:region", "naive"]
    assert {w["category"] for w in saved["data_fdi"]} == {"UserWarning"}
    for name in ("linked_twfe", "own"):
        assert any(
            w["category"] == "UserWarning" and FEW_CLUSTERS in w["message"] for w in saved[name]
        ), name
    # the manifest holds the same record, the page shows it, the console still saw it
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["warnings"] == saved
    page = (root / "report.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="warnings"') :]
    section = section[: section.index("</section>")]
    assert "<code>data_fdi</code>" in section and ONE_CLUSTER in section
    assert "<code>linked_twfe</code>" in section and FEW_CLUSTERS in section
    assert any(ONE_CLUSTER in m for m in shown) and any(FEW_CLUSTERS in m for m in shown)
    # written with the run: no temporary folder left beside it
    assert not list(root.parent.glob(f".{root.name}.tmp-*"))


def test_claims_warnings_are_the_same_for_the_same_spec(runs) -> None:
    # the second run, with the caller ignoring warnings (nothing on the console), records
    # the same warnings byte for byte
    (first, _), (second, shown) = runs
    assert not shown
    assert (first / "warnings.json").read_bytes() == (second / "warnings.json").read_bytes()
    assert _saved(first)
