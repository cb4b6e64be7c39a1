"""The bundled general probe (issue #12, item 5): fine enough to gate on, disjoint from what training sees, and
reproducible from the builder script and the noise filter that chose it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, load_script


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (REPO / "skills" / f"{name}.jsonl").read_text().splitlines() if line.strip()]


def test_the_probe_is_fine_enough_for_the_gates_general_limit():
    from sdft.params import load_params

    probe = _rows("general_probe")
    assert len(probe) >= 60 and len({r["id"] for r in probe}) == len(probe)
    one_question = 1 / len(probe)
    assert one_question < 0.02  # < 2 points
    limit = load_params(REPO / "params.yaml").gate.max_general_drop
    assert one_question < limit < 3 * one_question  # the limit is 1-2 questions, never "any drop" or a third


def test_no_probe_question_is_an_anchor_or_a_skill_prompt():
    prompts = lambda rows: {r["prompt"].strip().lower() for r in rows}  # noqa: E731
    probe = prompts(_rows("general_probe"))
    assert not probe & prompts(_rows("anchor_prompts"))
    for skill in ("zorbia_facts", "ticket_tags", "zorb_units"):
        assert not probe & prompts(_rows(skill))


def test_the_builder_writes_exactly_the_bundled_probe(tmp_path):
    builder = load_script("skills/build_demo_skills.py")
    assert builder.general() == _rows("general_probe")
    assert builder.NOISY and not builder.NOISY & {r["id"] for r in _rows("general_probe")}


def test_noise_filter_perturbs_each_matrix_by_eps_of_its_norm_and_is_seeded(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    noise = load_script("bench/probe_noise.py")
    base = load_file(tiny_model_dir / "model.safetensors")
    a = load_file(noise.perturbed_copy(tiny_model_dir, tmp_path / "a", 0.005, seed=0) / "model.safetensors")
    b = load_file(noise.perturbed_copy(tiny_model_dir, tmp_path / "b", 0.005, seed=0) / "model.safetensors")
    c = load_file(noise.perturbed_copy(tiny_model_dir, tmp_path / "c", 0.005, seed=1) / "model.safetensors")
    for name, w in base.items():
        if w.dim() == 2:
            assert (a[name] - w).norm() / w.norm() == pytest.approx(0.005, rel=1e-3)
        else:
            assert torch.equal(a[name], w)  # norms and biases untouched
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


def test_probe_noise_cli_documents_itself():
    res = subprocess.run([sys.executable, str(REPO / "bench" / "probe_noise.py"), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "--eps" in res.stdout
