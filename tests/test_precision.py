"""`model.dtype` trains with fp32 master weights and autocast, on CPU where it can (issue #16)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from conftest import fact_records
from sdft.data import write_skill
from sdft.errors import SdftError
from sdft.recipes import sdft as sdft_recipe
from sdft.recipes import sft as sft_recipe


def test_bfloat16_is_autocast_over_fp32_master_weights(params, tiny_model_dir, tmp_path):
    from sdft.models import load_model
    from sdft.train import train_skill

    params.model.dtype = "bfloat16"
    for cfg in (sdft_recipe.build_config(params, params.skill("facts"), tmp_path),
                sft_recipe.build_config(params, tmp_path)):
        assert cfg.bf16 is True and cfg.fp16 is False
    assert load_model(str(tiny_model_dir), params.model, for_training=True).dtype == torch.float32
    assert load_model(str(tiny_model_dir), params.model).dtype == torch.bfloat16  # serving/evaluation
    params.train.method, params.train.max_steps = "sft", 2
    data = write_skill(tmp_path / "data", fact_records(4), [], {"skill": "facts"}).out_dir
    metrics = train_skill(params, "facts", data, str(tiny_model_dir), tmp_path / "ckpt")
    assert metrics["steps"] == 2
    with safe_open(tmp_path / "ckpt" / "model.safetensors", "pt") as f:  # saved in the serving dtype
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}


def test_float32_stays_full_precision(params, tmp_path):
    cfg = sft_recipe.build_config(params, tmp_path)
    assert cfg.bf16 is False and cfg.fp16 is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_float16_without_a_gpu_is_refused_with_the_fix(params, tmp_path):
    params.model.dtype = "float16"
    with pytest.raises(SdftError, match="needs a CUDA GPU.*bfloat16"):
        sft_recipe.build_config(params, tmp_path)
