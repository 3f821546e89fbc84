"""Seed grids from diffusers pipelines and the Wen et al. signal; torch loads lazily.

Modules: `settings` (pure Python: what a run asks for, seeds, shards), `signal`
(pure Python: the per-grid score from recorded noise norms), `pipeline` (diffusers:
load, sample, provenance), `synthetic` (random-weight pipelines for tests and benchmarks).
"""
