"""Threshold set v0 (documented literature values) and validation of user threshold files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memgrid.core.errors import InputError
from memgrid.core.thresholds import SPECS, Thresholds, load_threshold_file, v0_notes, v0_values


class TestV0:
    def test_literature_values(self) -> None:
        values = v0_values()
        assert values["tiled_l2_delta"] == 0.15  # Carlini et al.
        assert values["sscd_replica"] == 0.5  # Somepalli et al., MemBench
        assert "tau_wen" not in values  # no literature threshold: the rule is not applied
        assert Thresholds.v0().tau_wen is None

    def test_every_value_documents_its_source(self) -> None:
        notes = v0_notes()
        for key, spec in SPECS.items():
            assert spec.source and spec.meaning
            assert key in notes
        assert "Carlini" in notes and "Somepalli" in notes and "Wen" in notes

    @pytest.mark.parametrize(
        ("seeds", "required"),
        # v0 reproduces Carlini's 10 of 500 and MemBench's 3 of 50 exactly; below
        # 2 * min_clique seeds a strict majority (2 of 3, 3 of 4).
        [(500, 10), (50, 3), (16, 3), (8, 3), (5, 3), (4, 3), (3, 2), (2, 2)],
    )
    def test_required_clique_follows_the_literature(self, seeds: int, required: int) -> None:
        assert Thresholds.v0().required_clique(seeds) == required

    def test_pair_thresholds_per_metric(self) -> None:
        v0 = Thresholds.v0()
        assert v0.pair_threshold("tiled-l2") == 0.15
        assert v0.pair_threshold("sscd") == 0.5
        assert v0.pair_threshold("phash") is None


class TestThresholdFiles:
    def test_toml_overrides_and_keeps_the_rest(self, tmp_path: Path) -> None:
        path = tmp_path / "strict.toml"
        path.write_text('notes = "stricter"\ntau_mem = 0.5\ntau_wen = 2.5\n')
        loaded = load_threshold_file(path)
        assert loaded.name == "strict"
        assert loaded.notes == "stricter"
        assert loaded.values["tau_mem"] == 0.5
        assert loaded.values["tau_wen"] == 2.5
        assert loaded.values["tiled_l2_delta"] == 0.15

    def test_json_with_name_and_model(self, tmp_path: Path) -> None:
        path = tmp_path / "t.json"
        path.write_text(json.dumps({"name": "sd14", "model": "CompVis/sd-v1-4", "tau_sem": 0.9}))
        loaded = load_threshold_file(path)
        assert (loaded.name, loaded.model, loaded.values["tau_sem"]) == (
            "sd14",
            "CompVis/sd-v1-4",
            0.9,
        )

    @pytest.mark.parametrize(
        ("content", "suffix", "problem", "location"),
        [
            ("tau_memm = 0.5\n", ".toml", "unknown threshold 'tau_memm'", "tau_memm"),
            ("tau_mem = 1.5\n", ".toml", "out of range [0, 1]", "tau_mem"),
            ("tau_mem = -0.1\n", ".toml", "out of range", "tau_mem"),
            ('tau_mem = "high"\n', ".toml", "must be a number", "tau_mem"),
            ("tau_mem = true\n", ".toml", "must be a number", "tau_mem"),
            ("min_clique = 2.5\n", ".toml", "whole number", "min_clique"),
            ("tau_mem = nan\n", ".toml", "out of range", "tau_mem"),
            ('{"tau_mem": 0.1,}', ".json", "invalid JSON", "line 1"),
            ("[1, 2]", ".json", "one table", None),
            ("tau_mem = \n", ".toml", "not valid TOML", None),
            ("name = 3\n", ".toml", "name must be a non-empty string", "name"),
            ('{"model": ""}', ".json", "model must be a non-empty string", "model"),
            ('{"tau_mem": 1' + "0" * 400 + "}", ".json", "out of range", "tau_mem"),
            ("tau_mem = 0.1\n", ".yaml", "must end in .toml or .json", None),
        ],
    )
    def test_bad_files_raise_input_error(
        self, tmp_path: Path, content: str, suffix: str, problem: str, location: str | None
    ) -> None:
        path = tmp_path / f"bad{suffix}"
        path.write_text(content)
        with pytest.raises(InputError) as caught:
            load_threshold_file(path)
        assert problem in caught.value.problem
        assert caught.value.location == location
        assert caught.value.source == str(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="not found"):
            load_threshold_file(tmp_path / "nope.toml")

    def test_stored_values_are_validated_too(self) -> None:
        with pytest.raises(InputError, match="unknown threshold"):
            Thresholds.from_values({"delta": 0.1}, source="default v3")


def test_set_references_name_a_version_or_the_latest() -> None:
    from memgrid.core.thresholds import parse_set_reference

    assert parse_set_reference("default@3") == ("default", 3)
    assert parse_set_reference("default@v0") == ("default", 0)
    assert parse_set_reference(" sd2 ") == ("sd2", None)
    assert parse_set_reference("team@lab@2") == ("team@lab", 2)
    for bad, problem in [
        ("@2", "NAME@VERSION"),
        ("default@", "NAME@VERSION"),
        ("d@x", "not a whole"),
    ]:
        with pytest.raises(InputError, match=problem):
            parse_set_reference(bad)


def test_a_diff_lists_the_keys_that_changed_in_spec_order() -> None:
    from memgrid.core.thresholds import ThresholdChange, diff_values

    before = {"tau_mem": 0.5, "tau_global": 0.6, "tau_region": 0.03}
    after = {"tau_mem": 0.4375, "tau_global": 0.6, "tau_wen": 4.2}
    changes = diff_values(before, after)
    assert changes == [
        ThresholdChange("tau_mem", 0.5, 0.4375),
        ThresholdChange("tau_region", 0.03, None),
        ThresholdChange("tau_wen", None, 4.2),
    ]
    assert changes[0].relative == pytest.approx(-0.125)
    # A weight that went down from -4 to -28 went down by 600%, not up.
    assert ThresholdChange("w_bias", -4.0, -28.0).relative == pytest.approx(-6.0)
    assert ThresholdChange("w_bias", -4.0, -2.0).relative == pytest.approx(0.5)
    assert diff_values(before, dict(before)) == []
