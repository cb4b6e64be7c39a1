"""params.yaml is the one source of run settings, and its values reach the TRL configs."""

from __future__ import annotations

import pytest

from conftest import REPO
from sdft.errors import SdftError
from sdft.params import PAPER_TEACHER_TEMPLATE, load_params
from sdft.recipes import sdft as sdft_recipe
from sdft.recipes import sft as sft_recipe


def test_repo_params_reach_the_sdft_config_paper_method_and_measured_departures(tmp_path):
    params = load_params(REPO / "params.yaml")
    cfg = sdft_recipe.build_config(params, params.skill("zorbia_facts"), tmp_path)
    assert cfg.teacher_model_kind == "ema" and cfg.teacher_update_rate == 0.01 and cfg.teacher_sync_steps == 1
    assert cfg.distillation_mode == "full_logits" and cfg.distillation_alpha == 0.0
    assert cfg.distillation_is_clip is None
    assert cfg.num_loss_tokens_to_skip == 3 and cfg.num_generations == 1 and cfg.temperature == 1.0
    # where params.yaml departs from the paper at 135M (docs/QUALITY.md §6)
    assert cfg.generate_from_teacher is True and params.sdft.disagreement_power == 1.0
    assert params.sdft.sft_weight == 0.1 and params.replay.prior_sft_weight == 1.0  # replayed rows: full weight (§24)
    assert cfg.learning_rate == params.train.learning_rate and cfg.num_train_epochs == params.train.num_train_epochs
    assert cfg.lr_scheduler_type == "cosine" and cfg.warmup_steps == params.train.warmup_ratio
    assert cfg.teacher_prompt_template == params.sdft.teacher_templates["knowledge"].replace(
        "{demonstration}", "{privileged_context}")
    assert cfg.per_device_train_batch_size == params.train.per_device_train_batch_size
    assert cfg.max_completion_length == params.train.max_completion_length


def test_paper_template_is_the_default_for_kinds_without_an_override(tmp_path):
    params = load_params(REPO / "params.yaml")
    assert params.sdft.teacher_template == PAPER_TEACHER_TEMPLATE
    params.skills["zorbia_facts"].kind = "no-override-kind"
    cfg = sdft_recipe.build_config(params, params.skill("zorbia_facts"), tmp_path)
    assert cfg.teacher_prompt_template == PAPER_TEACHER_TEMPLATE.replace("{demonstration}", "{privileged_context}")


def test_skill_kind_selects_its_teacher_template(tmp_path):
    params = load_params(REPO / "params.yaml")
    knowledge = sdft_recipe.build_config(params, params.skill("zorbia_facts"), tmp_path).teacher_prompt_template
    fmt = sdft_recipe.build_config(params, params.skill("ticket_tags"), tmp_path).teacher_prompt_template
    assert fmt != knowledge and "{privileged_context}" in fmt and "exactly the same format" in fmt


def test_sft_config_trains_on_completions_only(tmp_path):
    params = load_params(REPO / "params.yaml")
    cfg = sft_recipe.build_config(params, tmp_path)
    assert cfg.completion_only_loss is True and cfg.learning_rate == params.train.learning_rate


@pytest.mark.parametrize(
    "text, message",
    [
        ("train:\n  learning_rat: 1\n", "unknown key(s) ['learning_rat'] in `params.train`"),
        ("skills:\n  a: {scorer: exact}\n", "params.skills.a"),
        ("skills:\n  a: {path: x, after: base}\n  b: {path: y, after: base}\n", "has `after: base` but follows 'a'"),
        ("skills:\n  a: {path: x}\n", "set `after: base`"),
        ("skills:\n  a: {path: x, after: base}\nprobes:\n  a: {path: y}\n", "both a skill and a probe"),
        ("skills: [a, b]\n", "must be a mapping of name"),
        ("train: [1, 2]\n", "must be a mapping"),
        ("model: {name_or_path: x\n", "not valid YAML"),
        ("replay:\n  anchor_projection_share: 0.9\n", "anchor_projection_share > 0 needs SDFT"),  # no anchors
        ("replay: {anchor_projection_share: 0.9, anchor_fraction: 0.25}\n", "anchor_projection_share > 0 needs SDFT"),  # sampled
    ],
)
def test_bad_params_are_clear_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(SdftError) as info:
        load_params(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_teacher_template_is_refused(tmp_path):
    params = load_params(REPO / "params.yaml")
    params.sdft.teacher_template = "{prompt} only"
    params.sdft.teacher_templates = {}
    with pytest.raises(SdftError, match="lacks the \\{demonstration\\} slot"):
        sdft_recipe.build_config(params, params.skill("zorbia_facts"), tmp_path)


def test_per_skill_gate_overrides_the_top_level_thresholds():
    params = load_params(REPO / "params.yaml")
    params.skills["ticket_tags"].gate = {"min_new_score": 0.5}
    assert params.gate_for("ticket_tags").min_new_score == 0.5
    assert params.gate_for("ticket_tags").max_prior_drop == params.gate.max_prior_drop
    assert params.gate_for("zorbia_facts").min_new_score == params.gate.min_new_score
    params.skills["ticket_tags"].gate = {"min_new_scor": 0.5}
    with pytest.raises(SdftError, match="unknown key"):
        params.gate_for("ticket_tags")


def test_curriculum_order_and_parents():
    params = load_params(REPO / "params.yaml")
    assert list(params.skills) == ["zorbia_facts", "ticket_tags", "zorb_units"]
    assert params.parent("zorbia_facts") == "base" and params.parent("zorb_units") == "ticket_tags"
    assert params.skills_through("ticket_tags") == ["zorbia_facts", "ticket_tags"]
    assert list(params.probes) == ["general_probe"]
