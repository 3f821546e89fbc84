"""Labelled sets as files other tools load: rows, filters, writers and the export folder.

docs/design.md, "Export": One row per grid (prompt, agreed label and how it was reached, every
annotator's label, proposal, scores, provenance, images), written as JSONL, CSV,
Parquet, a Hugging Face `imagefolder` or WebDataset tar shards, beside a manifest
(`export.json`) that makes the export traceable. Everything is written into a hidden
folder beside the destination and renamed onto it at the end, so an interrupted export
leaves nothing at the destination. Every file name derives from ids, never from prompts.

The modules, from the bottom up:
- `staging`: the destination rules and the hidden folder renamed onto it;
- `options`: formats, image modes, filters and what to export where;
- `columns`: the project's own flat columns (prompt fields, score values) and their types;
- `rows`: one grid's row, nested and flat;
- `manifest`: the counts and the `export.json` that describe an export;
- `base`: what every writer shares (rendered batches, images, open files);
- `contact_sheet`: one PNG per grid, its seeds tiled and its region outlined;
- `jsonl`, `csv`, `parquet` (with `schema`, its typed layout), `imagefolder`,
  `webdataset`: one writer per format;
- `writers`: which writer serves which format.

Nothing is imported here, so importing one module loads only what it needs; pyarrow
loads only when a Parquet or imagefolder export runs.
"""
