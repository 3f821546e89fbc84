"""Calibrating the demo on a handful of labels (examples/webster-labels.csv) keeps it useful.

The reproduction of a calibration defect: the combined score's fit ran off (w_bias -4 to
-28, then -52 on a second calibration) and every demo proposal became "none". A fit on a
few labels must not make the proposals worse on those labels, must give the same weights
when repeated, and must say which weights too few labels leave at their defaults.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memgrid.core.calibration.run import WeightFit
from memgrid.core.combined import weight_keys
from memgrid.core.errors import ProjectError
from memgrid.core.taxonomy import Category
from memgrid.core.thresholds import SPECS, v0_values
from memgrid.tui.cli import app
from memgrid.tui.services import calibration
from memgrid.tui.services.calibration import accept_run, agreed_labels
from memgrid.tui.services.project import open_project
from tests.conftest import project_copy

WEBSTER_LABELS = Path(__file__).resolve().parents[2] / "examples" / "webster-labels.csv"


@pytest.fixture(scope="module")
def _built_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project as `memgrid demo` builds it (scored, matched, proposed)."""
    root = tmp_path_factory.mktemp("webster") / "demo"
    result = CliRunner().invoke(app, ["demo", "-p", str(root), "--no-open"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def demo(_built_demo: Path, tmp_path: Path) -> Path:
    return project_copy(_built_demo, tmp_path)


def import_labels(runner: CliRunner, root: Path, labels: Path) -> None:
    result = runner.invoke(app, ["labels", "import", str(labels), "-a", "ana", "-p", str(root)])
    assert result.exit_code == 0, result.output


def calibrate(runner: CliRunner, root: Path, *options: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["calibrate", "-p", str(root), "--json", "--bootstraps", "50", *options]
    )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    return run


def proposed_right(root: Path) -> int:
    """Labelled grids whose stored proposal says memorized-or-not as the label does."""
    with open_project(root) as project:
        agreed, _ = agreed_labels(project)
        right = 0
        for grid_id, label in agreed.items():
            proposal = project.store.proposals.find(grid_id)
            assert proposal is not None
            right += (proposal.category is Category.NONE) == (label.category is Category.NONE)
    return right


def weights(run: dict[str, Any]) -> dict[str, float]:
    return {key: run["fitted"][key] for key in weight_keys()}


def test_webster_labels_calibrate_the_demo_without_collapsing_it(
    demo: Path, runner: CliRunner
) -> None:
    import_labels(runner, demo, WEBSTER_LABELS)
    right_by_default = proposed_right(demo)
    run = calibrate(runner, demo, "--accept")
    assert run["accepted"] == "default v1" and run["refused"] is None
    for key, value in weights(run).items():
        assert math.isfinite(value) and SPECS[key].low < value < SPECS[key].high
    # Never worse than the defaults on the labels it was fitted on, in the categories...
    assert run["after"]["accuracy"] >= run["before"]["accuracy"]
    # ...and in memorized or not, as the recomputed proposals say.
    assert proposed_right(demo) >= right_by_default
    categories = run["proposals"]["categories"]
    assert sum(count for name, count in categories.items() if name != "none") > 0
    # Nothing in the demo shows CLIP evidence (no weights offline): that weight stays at v0,
    # and the report says why.
    assert run["fitted"]["w_semantic"] == v0_values()["w_semantic"]
    assert run["threshold_fits"]["w_semantic"] == "default: too few labels"
    assert any("w_semantic kept at default" in w for w in run["warnings"])

    # The same labels again: the same weights, so nothing to accept and no drift.
    again = calibrate(runner, demo, "--accept")
    assert weights(again) == weights(run)
    assert again["changes"] == {} and again["accepted"] is None


def test_too_few_labels_keep_every_weight_at_its_default_and_say_so(
    demo: Path, runner: CliRunner, tmp_path: Path
) -> None:
    rows = WEBSTER_LABELS.read_text(encoding="utf-8").splitlines()
    one_memorized = [rows[0], rows[1], *(row for row in rows if row.endswith(",N"))]
    few = tmp_path / "few.csv"
    few.write_text("\n".join(one_memorized) + "\n", encoding="utf-8")
    import_labels(runner, demo, few)
    run = calibrate(runner, demo)
    assert weights(run) == {key: v0_values()[key] for key in weight_keys()}
    assert {run["threshold_fits"][key] for key in weight_keys()} == {"default: too few labels"}
    assert any(
        "kept their defaults: moving them needs at least 2 memorized and 2 not-memorized "
        "labelled grids (has 1 and 6)" in w
        for w in run["warnings"]
    )
    text = runner.invoke(app, ["calibrate", "-p", str(demo), "--no-plots", "--bootstraps", "0"])
    assert "combined score's weights kept their defaults" in " ".join(text.output.split())


def test_a_fit_that_did_not_converge_says_so_not_too_few_labels(
    demo: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_labels(runner, demo, WEBSTER_LABELS)
    real_fit = calibration.fit_weights

    def stuck(*args: Any) -> Any:  # what fit_weights returns when Newton does not settle
        fit = real_fit(*args)
        return replace(fit, converged=False, held=tuple(weight_keys()))

    monkeypatch.setattr(calibration, "fit_weights", stuck)
    run = calibrate(runner, demo)
    assert {run["threshold_fits"][key] for key in weight_keys()} == {
        "default: fit did not converge"
    }
    assert any("fit did not converge: every weight kept its default" in w for w in run["warnings"])


def test_a_fit_worse_on_its_own_labels_is_refused(
    demo: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_labels(runner, demo, WEBSTER_LABELS)
    # A fit gone wrong, as the old one did: a bias that calls nothing memorized.
    real_fit = calibration.fit_combined

    def runaway(*args: Any) -> WeightFit:
        fit = real_fit(*args)
        return WeightFit({**fit.values, "w_bias": -50.0}, fit.fitted_on, [])

    monkeypatch.setattr(calibration, "fit_combined", runaway)
    report = demo / "refused.html"
    result = runner.invoke(
        app, ["calibrate", "-p", str(demo), "--accept", "--no-plots", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    # The HTML report says so too, where a reader of the report alone would miss it.
    assert re.search(
        r"Not accepted: the fitted thresholds label \d+ of 21 labelled grids right, the "
        r"current ones \d+; the current thresholds stay active",
        report.read_text(),
    )
    said = " ".join(result.output.split())
    assert re.search(
        r"Not accepted: the fitted thresholds label \d+ of 21 labelled grids right, the "
        r"current ones \d+\.( Report written|$)",
        said,
    )
    with open_project(demo) as project:
        active = project.store.thresholds.find_active()
        assert active is not None and active.label == "default v0"
        (run,) = project.store.runs.all()
        assert not run.accepted
        with pytest.raises(ProjectError, match="not accepted: the fitted thresholds label"):
            accept_run(project, run.id)
