"""The quality grid's settings live in bench/grid_settings.yaml (issue #15): each one is a valid set of params.yaml
overrides, checked the way `sdft --set` checks them, and a name given twice is refused instead of silently running
the second definition."""

from __future__ import annotations

import pytest

from conftest import REPO, load_script
from sdft.errors import SdftError
from sdft.params import load_params, with_overrides


def test_every_grid_setting_is_a_valid_override_of_params_yaml():
    params = load_params(REPO / "params.yaml")
    settings = load_script("bench/quality_grid.py").load_settings()
    assert len(settings) >= 40
    for name, overrides in settings.items():
        changed = with_overrides(params, overrides, where=name)
        for key, value in overrides.items():  # the value arrived where the dotted key points, with its type
            node = changed
            for part in key.split("."):
                node = node[part] if isinstance(node, dict) else getattr(node, part)
            assert node == value, (name, key)


def test_a_setting_named_twice_is_refused(tmp_path):
    twice = tmp_path / "settings.yaml"
    twice.write_text("a: {train.learning_rate: 1.0e-4}\nb: {}\na: {train.learning_rate: 2.0e-4}\n")
    with pytest.raises(SdftError, match=r"\['a'\] are defined more than once") as exc:
        load_script("bench/quality_grid.py").load_settings(twice)
    assert str(twice) in str(exc.value)


def test_a_mistyped_key_in_a_setting_is_refused():
    with pytest.raises(SdftError, match="unknown key `train.learnig_rate`"):
        with_overrides(load_params(REPO / "params.yaml"), {"train.learnig_rate": 1e-4}, where="setting x")


@pytest.mark.parametrize("script", ["pareto.py", "quality_grid.py", "heldout_check.py",
                                    "probe_noise.py skills/general_probe.jsonl --out /dev/null"])
def test_bench_scripts_take_set_overrides_checked_like_params_yaml(script):
    """`--set KEY=VALUE` works on every bench script as on `sdft`: a mistyped key stops it before any run."""
    import subprocess
    import sys

    name, *args = script.split()
    res = subprocess.run([sys.executable, str(REPO / "bench" / name), *args, "--set", "train.learnig_rate=1e-4"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "unknown key `train.learnig_rate`" in res.stderr + res.stdout
