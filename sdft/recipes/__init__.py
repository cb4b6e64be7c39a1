"""One readable end-to-end training script per method (torchtune-style recipes).

Each recipe turns `params.yaml` into a TRL config and builds the trainer (`build_trainer`);
`sdft.train` picks the recipe, runs it and writes the checkpoint.
"""
