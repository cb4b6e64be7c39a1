"""The pipeline's SDFT trainer: TRL's `SDFTTrainer` with four additions, each off at its default.

1. **Per-row teacher views.** A row's `privileged_context` is the teacher's whole prompt, rendered by
   `sdft.prompts.teacher_view` with that row's own skill template, so replayed records of earlier skills
   (sdft/replay.py) keep the template of their kind. An anchor row's view is its prompt alone, and its
   teacher is the **frozen parent** (the model the run started from), not the EMA teacher (which is not run on it):
   self-generated replay of general behaviour. Its tokens are a sampled rollout or, with
   `replay.anchor_rollouts: parent_greedy`, the parent's own greedy answer (a row's fixed `rollout`).
2. **Disagreement weighting** (`sdft.disagreement_power` = g > 0). TRL averages the per-token divergence
   over each rollout. At 135M only the one or two tokens that name a new fact carry the skill, while
   every token the teacher would phrase differently fills the rest of the mean (docs/QUALITY.md §3).
   Each token's loss is weighted by (its divergence / the rollout's mean divergence) ** g, the weight
   detached, so a token's gradient is scaled but never reversed. g = 0 is TRL's (the paper's) plain mean.
3. **An SFT term** (`sdft.sft_weight` = lambda > 0): lambda * NLL of the demonstration given the prompt
   (token mean over the batch's demonstration tokens), on the rows that have one. Replayed earlier-skill rows
   may take their own lambda (`replay.prior_sft_weight`): each token's NLL is then weighted by its row's lambda,
   still divided by all the batch's demonstration tokens, so equal lambdas give exactly lambda * NLL.
4. **The update kept off the parent's general-text subspace** (`replay.anchor_projection_share` = s > 0,
   sdft/recipes/projection.py): after every optimizer step each linear layer's change from the parent is
   projected off the inputs the parent's greedy anchor answers give it (the leading share s of their energy).

And the EMA teacher is part of a mid-run checkpoint (`train.save_steps`), so a resumed run continues with
the same teacher, not a fresh copy of the base (TRL saves only the student).
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from trl.experimental.sdft import SDFTTrainer
from trl.experimental.sdft.loss_utils import (
    compute_full_logit_self_distillation_loss,
    compute_topk_self_distillation_loss,
)
from trl.experimental.sdft.sdft_trainer import DemonstrationTeacherContextBuilder
from trl.trainer.utils import pad
from transformers import TrainerCallback

from .projection import UpdateProjector

TEACHER_FILE = "sdft_teacher.safetensors"


def disagreement_weights(per_token_div: torch.Tensor, loss_mask: torch.Tensor, power: float) -> torch.Tensor:
    """mask * (div / mean div over the rollout's loss tokens) ** power; a rollout's weights average to ~1."""
    mask = loss_mask.to(per_token_div.dtype)
    div = per_token_div.detach().clamp(min=0.0) * mask
    mean = div.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
    return mask * (div / mean.clamp(min=1e-8)) ** power


class _NoTeacher:
    """The teacher handed to TRL's logits method when this trainer scores the teacher rows itself: no rows."""

    def __call__(self, input_ids, **_):
        return SimpleNamespace(logits=torch.zeros((0, input_ids.size(1), 1)))


class RenderedTeacherViews(DemonstrationTeacherContextBuilder):
    """`privileged_context` already holds the teacher's full prompt (rendered per row): use it as is."""

    def _compose_teacher_prompt(self, prompt, privileged_context):
        return privileged_context


class _ProjectAfterStep(TrainerCallback):
    """Runs after `optimizer.step()` and before the EMA teacher follows the student (TRL syncs at step end)."""

    def __init__(self, projector: UpdateProjector):
        self.projector = projector

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.projector.project()


class PipelineSDFTTrainer(SDFTTrainer):
    def __init__(self, *args, disagreement_power: float = 0.0, sft_weight: float = 0.0,
                 prior_sft_weight: float | None = None, anchor_skip_tokens: int | None = None,
                 projection_share: float = 0.0, **kwargs):
        prior_sft_weight = sft_weight if prior_sft_weight is None else prior_sft_weight
        if disagreement_power < 0 or sft_weight < 0 or prior_sft_weight < 0:
            raise ValueError("sdft.disagreement_power, sdft.sft_weight and replay.prior_sft_weight must be >= 0")
        if not 0 <= projection_share < 1:
            raise ValueError("replay.anchor_projection_share must lie in [0, 1)")
        dataset = kwargs["train_dataset"]
        has_anchors = "source" in dataset.column_names and "anchor" in set(dataset["source"])
        # The parent, frozen before any update (and before PEFT wraps the model): the anchors' teacher.
        self.parent_model = copy.deepcopy(kwargs["model"]).requires_grad_(False).eval() if has_anchors else None
        super().__init__(*args, **kwargs)
        self.teacher_context_builder = RenderedTeacherViews(self)
        self.disagreement_power = disagreement_power
        # lambda per row source (sdft/replay.py); a row without a source (no replay) is the new skill's.
        self.sft_weights = {"new": sft_weight, "prior": prior_sft_weight}
        self.sft_term_on = any(w > 0 for w in self.sft_weights.values())
        self.anchor_skip_tokens = anchor_skip_tokens  # None: as every other row (num_loss_tokens_to_skip)
        self._fixed_rollouts = None  # per batch, while sample_rollouts runs: a row's fixed rollout ids or None
        if self.parent_model is not None:
            # As TRL prepares its teacher: on the student's device, and under the same autocast (bf16/fp16).
            self.parent_model = self.accelerator.prepare_model(self.parent_model, evaluation_mode=True)
        self.projector = self._anchor_projector(dataset, projection_share) if projection_share > 0 else None
        if self.projector is not None:
            self.add_callback(_ProjectAfterStep(self.projector))

    def _anchor_projector(self, dataset, share: float) -> UpdateProjector:
        """Each linear layer's general-input subspace, from the model before any update (the student, as loaded),
        over each distinct anchor of the run once, prompt and the parent's fixed greedy answer."""
        anchors = {}
        for ex in dataset:
            if ex.get("source") == "anchor" and ex.get("rollout"):
                anchors.setdefault(repr(ex["prompt"]), ex)
        if not anchors:
            raise ValueError("replay.anchor_projection_share needs anchor rows with the parent's greedy answers "
                             "(replay.anchor_fraction > 0, replay.anchor_rollouts: parent_greedy)")
        rows = list(anchors.values())
        prompts = self._tokenize_prompts([ex["prompt"] for ex in rows])
        sequences = [p + list(ex["rollout"])[: self.max_completion_length] for p, ex in zip(prompts, rows, strict=True)]
        return UpdateProjector(self.accelerator.unwrap_model(self.model), sequences, share)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["prompt", "privileged_context", "demonstration", "source", "rollout"]

    # ------------------------------------------------------------ rollouts: sampled, or fixed per row

    def sample_rollouts(self, inputs):
        # A row with a `rollout` (an anchor on the parent's greedy path, replay.anchor_rollouts) is not sampled:
        # its token ids (the stop token kept when the answer ended before the cap) stand where a sampled rollout would.
        self._fixed_rollouts = [list(ex["rollout"])[: self.max_completion_length] if ex.get("rollout") else None
                                for ex in inputs]
        try:
            return super().sample_rollouts(inputs)
        finally:
            self._fixed_rollouts = None

    def _generate(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        fixed = self._fixed_rollouts or [None] * len(prompt_ids)
        todo = [i for i, ids in enumerate(fixed) if ids is None]
        completions = list(fixed)
        if todo:
            _, sampled = self._sample([prompt_ids[i] for i in todo])
            for i, ids in zip(todo, sampled, strict=True):
                completions[i] = ids
        return prompt_ids, completions

    def _sample(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        """One sampled rollout per prompt (TRL's generation; the vLLM recipe overrides this)."""
        return SDFTTrainer._generate(self, prompt_ids)

    def sampled_prompt_ids(self, inputs) -> list[list[int]]:
        """The prompt ids `_sample` will get for these rows: the rows without a fixed rollout, chosen and tokenized as
        TRL's `sample_rollouts` does (the teacher's view when `generate_from_teacher`). The vLLM recipe's overlap
        uses it to start the next batch's rollouts ahead; it checks the ids it then gets against these."""
        rows = [ex for ex in inputs if not ex.get("rollout")]
        prompts = [ex["prompt"] for ex in rows]
        if rows and self.generate_from_teacher:
            prompts = self.teacher_context_builder.select_generation_prompts(
                prompts, [ex.get("privileged_context") for ex in rows])
        return self._tokenize_prompts(prompts) if prompts else []

    # ------------------------------------------------------------ mid-run checkpoints: the teacher too

    def _save_checkpoint(self, model, trial):
        # Written before transformers' files: its trainer_state.json comes last and marks the folder complete.
        if self.args.should_save and self.teacher_model is not None:
            from safetensors.torch import save_model

            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            save_model(self.accelerator.unwrap_model(self.teacher_model), str(folder / TEACHER_FILE))
        super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = Path(resume_from_checkpoint) / TEACHER_FILE
        if self.teacher_model is not None and path.is_file():
            from safetensors.torch import load_model

            load_model(self.accelerator.unwrap_model(self.teacher_model), str(path))

    # ------------------------------------------------------------ batch: anchor rows, SFT targets

    def _prepare_training_batch(self, inputs):
        batch = super()._prepare_training_batch(inputs)
        device = batch["completion_ids"].device
        batch["anchor_mask"] = torch.tensor([ex.get("source") == "anchor" for ex in inputs], device=device)
        if self.sft_term_on:
            batch.update(self._sft_tensors(inputs, batch["prompt_ids"], batch["prompt_mask"], device))
        return batch

    def _sft_tensors(self, inputs, prompt_ids, prompt_mask, device) -> dict[str, torch.Tensor]:
        """Student prompt (the batch's own tokens, padding dropped) + demonstration + EOS per row that has a
        demonstration, left-padded so every demonstration ends at the right edge; the label mask covers the
        demonstration and EOS, `sft_row_weight` is the row's lambda. A row without one (an anchor) is left out: it
        adds nothing to the NLL's sum or count, and its prompt would only cost a forward and backward. A row whose
        lambda is 0 is not forwarded either, but its tokens stay in the count (`sft_tokens`), so a lambda near 0
        and one at 0 give nearly the same loss."""
        ids, labels, weights, tokens = [], [], [], 0
        for p_ids, ex in zip((row[m.bool()].tolist() for row, m in zip(prompt_ids, prompt_mask)), inputs, strict=True):
            demo = ex.get("demonstration") or ""
            if not demo:
                continue
            d_ids = self._tokenizer(demo, add_special_tokens=False)["input_ids"] + [self._tokenizer.eos_token_id]
            tokens += len(d_ids)
            weight = self.sft_weights["prior" if ex.get("source") == "prior" else "new"]
            if weight == 0:
                continue
            ids.append(torch.tensor(list(p_ids) + d_ids))
            labels.append(torch.tensor([0] * len(p_ids) + [1] * len(d_ids)))
            weights.append(weight)
        if not ids:
            return {}
        return {
            "sft_row_weight": torch.tensor(weights, device=device),
            "sft_tokens": torch.tensor(float(tokens), device=device),
            "sft_input_ids": pad(ids, padding_value=self._tokenizer.pad_token_id, padding_side="left").to(device),
            "sft_attention_mask": pad([torch.ones_like(t) for t in ids], padding_value=0, padding_side="left").to(device),
            "sft_label_mask": pad(labels, padding_value=0, padding_side="left").to(device),
        }

    # ------------------------------------------------------------ loss

    def _compute_teacher_student_logits(self, model, teacher_model, inputs):
        anchors = inputs.get("anchor_mask")
        if self.parent_model is not None and anchors is not None and anchors.any():
            logits = self._logits_with_parent_on_anchors(model, teacher_model, inputs, anchors)
            if self.anchor_skip_tokens is not None:  # anchors' own skip (replay.anchor_skip_tokens)
                completion_mask = inputs["completion_mask"]
                positions = torch.arange(completion_mask.size(1), device=completion_mask.device).unsqueeze(0)
                own = completion_mask * (positions >= self.anchor_skip_tokens).to(completion_mask.dtype)
                logits.loss_mask = torch.where(anchors.unsqueeze(1), own, logits.loss_mask)
        else:
            logits = super()._compute_teacher_student_logits(model, teacher_model, inputs)
        if self.disagreement_power > 0 and self.args.distillation_mode == "sampled_token":
            # Its per-token loss is no divergence to rank by: weights come from the full-vocabulary one (a second
            # pass, only in this mode); TRL's loss is sum(loss * mask) / sum(mask), so a real mask is a weight.
            with torch.no_grad():
                div = compute_full_logit_self_distillation_loss(
                    logits.student_logits, logits.teacher_logits, distillation_alpha=self.args.distillation_alpha)
            logits.loss_mask = disagreement_weights(div, logits.loss_mask, self.disagreement_power)
        return logits

    def _logits_with_parent_on_anchors(self, model, teacher_model, inputs, anchors):
        """TRL's student and teacher logits, with each anchor row's teacher logits from the frozen parent. The EMA
        teacher is forwarded on the other rows only (TRL's method would score every row and the anchors' scores
        would be thrown away). Rows are cut from the batch's own padded tensors, so each row's positions, and its
        numbers, are those of a whole-batch forward."""
        # TRL's own student forward and skip mask, its teacher handed no row (filled in below).
        others = ~anchors
        ids, mask = inputs["teacher_input_ids"], inputs["teacher_attention_mask"]
        keep = inputs["completion_ids"].size(1)
        logits = super()._compute_teacher_student_logits(
            model, _NoTeacher(), {**inputs, "teacher_input_ids": ids[:0], "teacher_attention_mask": mask[:0]})
        teacher = logits.student_logits.detach().new_empty(logits.student_logits.shape)
        with torch.no_grad():
            teacher[anchors] = self._forward_logits(self.parent_model, ids[anchors], mask[anchors], keep).to(teacher.dtype)
            if others.any():
                with self._get_teacher_context_for_self_distillation():
                    teacher[others] = self._forward_logits(teacher_model, ids[others], mask[others], keep).to(teacher.dtype)
        logits.teacher_logits = teacher
        return logits

    def _compute_self_distillation_loss(self, model, inputs, logits):
        """TRL's loss, except with disagreement weighting (full/top-k logits): the per-token divergence over the
        vocabulary is computed once, and its detached value sets the weights (TRL's path would compute it again).
        TRL's importance-sampling clip is not applied: the pipeline always runs with it off (recipes/sdft.py)."""
        weighted = self.disagreement_power > 0 and self.args.distillation_mode != "sampled_token"
        if not weighted or logits.loss_mask.sum() == 0:
            return super()._compute_self_distillation_loss(model, inputs, logits)
        args = self.args
        if args.distillation_mode == "topk_logits":
            per_token = compute_topk_self_distillation_loss(
                logits.student_logits, logits.teacher_logits, distillation_topk=args.distillation_topk,
                distillation_alpha=args.distillation_alpha, distillation_add_tail=args.distillation_add_tail)
        else:
            per_token = compute_full_logit_self_distillation_loss(
                logits.student_logits, logits.teacher_logits, distillation_alpha=args.distillation_alpha)
        weights = disagreement_weights(per_token, logits.loss_mask, self.disagreement_power)  # detached inside
        # TRL's aggregation with the weights as the mask: per-rollout weighted mean, then the batch mean.
        loss = ((per_token * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)).mean()
        mode = "train" if model.training else "eval"
        mean = (per_token * weights).sum() / weights.sum().clamp(min=1.0)
        self._log_self_distillation_metric(mode, self.accelerator.gather(mean.detach()).mean().item())
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.sft_term_on and "sft_label_mask" in inputs and inputs["sft_label_mask"].any():
            nll, mask = sft_token_nll(model, inputs["sft_input_ids"], inputs["sft_attention_mask"],
                                      inputs["sft_label_mask"])
            mode = "train" if model.training else "eval"
            self._metrics[mode]["sft_nll"].append((nll.sum() / mask.sum().clamp(min=1.0)).item())
            term = (nll * inputs["sft_row_weight"].unsqueeze(1)).sum() / inputs["sft_tokens"].clamp(min=1.0)
            scale = self.current_gradient_accumulation_steps if model.training else 1.0
            loss = loss + term / scale
        return loss


def sft_token_nll(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  label_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token negative log-likelihood of the labelled tokens (each predicted from the tokens before it; 0 at
    the unlabelled ones), and the float mask of the labelled ones: (B, K) each, K the longest labelled span.

    The labels sit at the right edge (left padding), so only the last K+1 positions need the vocabulary
    projection (`logits_to_keep`): the prompt's positions never reach the 49k-wide head or the cross-entropy.
    Positions are counted from each row's first real token, so padding changes no number."""
    keep = int(label_mask.sum(-1).max())  # K: the longest labelled span
    if keep == 0:
        return (z := input_ids.new_zeros((input_ids.size(0), 0), dtype=torch.float32)), z
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False,
                   logits_to_keep=keep + 1).logits[:, -keep - 1:-1].float()
    targets, mask = input_ids[:, -keep:], label_mask[:, -keep:].to(logits.dtype)
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none").view_as(mask)
    return nll * mask, mask
