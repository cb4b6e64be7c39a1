"""The main job (`make demo`): the whole pipeline on the embedded default model.

1. The Prefect flow `learn-pending-skills` learns the bundled skills in sequence with SDFT through the
   DVC stages (ingest -> train -> evaluate -> gate -> register), promoting each passing version.
2. The baselines learn the same curriculum from the same base (in-process, <artifacts_dir>/compare/): SFT with the
   same replay as SDFT (when `replay:` is on) and bare SFT.
3. It prints the accuracy matrix, ACC/BWT, the gate verdicts, SDFT beside both baselines, and where to look.
"""

from __future__ import annotations

import time

from flows.pipeline import learn_pending_skills
from sdft import registry, replay, stages
from sdft.params import load_params, only_skills, with_overrides
from sdft.report import compare_table
from sdft.sequence import learn_sequence


def main() -> None:
    start = time.perf_counter()
    params = load_params("params.yaml")
    outcome = learn_pending_skills()
    report = params.layout.report_file().read_text()
    print("\n" + report)
    if outcome["stopped_at"]:
        print(f"The chain stopped at {outcome['stopped_at']}: its gate failed (see the report above).")
    print("Registry aliases:", registry.aliases(params))

    sdft = stages.accuracy_matrix(params, label="sdft (pipeline)")
    params = only_skills(params, sdft.skills, where="the skills the SDFT chain reached")
    # What a user would pick instead of SDFT: SFT, and SFT with the same replay as the SDFT run.
    baselines = []
    compare = params.layout.compare_dir()
    if replay.is_active(params):
        baselines.append(learn_sequence(params, "sft", compare / "sft-replay", label="sft+replay"))
    bare = with_overrides(params, {"replay.prior_fraction": 0.0, "replay.anchor_fraction": 0.0}, where="bare SFT")
    baselines.append(learn_sequence(bare, "sft", compare / "sft"))
    print("\nSDFT vs SFT, same base, same data (%; new skill = right after learning it):")
    print(compare_table([sdft, *baselines]))
    print(f"\nDone in {(time.perf_counter() - start) / 60:.1f} min. Where to look:\n"
          f"  dvc metrics show            # ACC/BWT, per-skill scores, gate verdicts\n"
          f"  dvc plots show              # forgetting plot -> dvc_plots/index.html\n"
          f"  mlflow ui --backend-store-uri {registry.tracking_uri()} --workers 1   # runs, registry, aliases\n"
          f"  {params.layout.report_file()}, {params.layout.gate_report('<skill>')}")


if __name__ == "__main__":
    main()
