"""Seed grids from diffusers pipelines and the Wen et al. signal; torch loads lazily.

Modules: `settings` (pure Python: what a run asks for, seeds, shards), `signal`
(pure Python: the per-grid score from recorded noise norms), `launch` (pure Python: which
shard this process is under torchrun, Slurm or Ray, where shards are written, the sbatch
script), `weights` (which weights a model is), `loading` (find a model on disk or on the
hub, load it, compile it), `pipeline` (diffusers: sample, provenance), `synthetic`
(random-weight pipelines for tests and benchmarks).
"""
