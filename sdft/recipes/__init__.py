"""One readable end-to-end training script per method (torchtune-style recipes).

Each recipe turns `params.yaml` into a TRL config, trains, and returns the trained model and its
log history; `sdft.train` picks the recipe and writes the checkpoint.
"""
