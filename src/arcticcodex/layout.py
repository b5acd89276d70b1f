"""The names of the files a signed dataset folder holds, for every module that must recognise one.

Why a module of its own: the folder walk (``vault/walk.py``) skips dataset folders so a dataset is never
imported back into the vault it was distilled from, and it sits in a lower layer than the dataset writer
(docs/architecture.md): it may know the names, not import the writer.
"""

from __future__ import annotations

FORMAT = "arcticcodex-dataset/1"  # the manifest's "format": what makes a folder an ArcticCodex dataset
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
REJECTED_FILE = "rejected.jsonl"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
