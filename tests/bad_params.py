"""Malformed params.yaml values, each of which must be refused at load naming its key (issue #13).

One list for the unit tests (tests/test_faults.py) and the fault suite (bench/faults.py)."""

# (section, key, value): a wrong type, a value out of range, or a name that is not one of the choices.
BAD_VALUES = [
    ("train", "learning_rate", "fast"), ("train", "learning_rate", -1e-4), ("train", "learning_rate", 0),
    ("train", "learning_rate", 2.0), ("train", "per_device_train_batch_size", 0),
    ("train", "per_device_train_batch_size", 2.5), ("train", "num_train_epochs", 0), ("train", "max_steps", 0),
    ("train", "max_steps", -5), ("train", "gradient_accumulation_steps", 0), ("train", "warmup_ratio", 1.5),
    ("train", "max_grad_norm", 0), ("train", "max_completion_length", 0), ("train", "lr_scheduler_type", "cosine-ish"),
    ("train", "method", "rl"), ("train", "seed", "x"), ("train", "weight_decay", -0.1), ("eval", "batch_size", 0),
    ("train", "freeze", "^model.embed"), ("train", "freeze", ["(unclosed"]),
    ("eval", "max_new_tokens", -1), ("sdft", "disagreement_power", -1), ("sdft", "sft_weight", -0.5),
    ("sdft", "teacher_update_rate", 0), ("sdft", "teacher_update_rate", 1.5), ("sdft", "distillation_mode", "kl"),
    ("sdft", "num_generations", 0), ("sdft", "temperature", 0), ("sdft", "min_p", 1.0), ("sdft", "top_p", 0), ("sdft", "generate_from_teacher", "yes please"),
    ("gate", "max_prior_drop", 5), ("gate", "max_general_drop", -0.1), ("gate", "min_new_score", 2),
    ("model", "dtype", "float64"), ("rollout", "engine", "vlm"), ("rollout", "gpu_memory_utilization", 0),
    ("data", "eval_fraction", 2.0), ("data", "eval_fraction", 1.0), ("data", "max_file_mb", 0),
    ("replay", "prior_fraction", 1.0), ("replay", "anchor_fraction", -0.1), ("replay", "prior_sft_weight", -0.5),
    ("replay", "prior_sft_weight", "more"),
    ("replay", "anchor_projection_share", 1.0), ("promotion", "mode", "sometimes"),
]
