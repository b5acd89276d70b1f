"""Signed datasets: TrainingPair records, their signatures, the writer, the verifier, statistics and exports."""

from __future__ import annotations

from .export import EXPORT_FORMATS, export_dataset
from .record import PairSource, Revision, TrainingPair, canonical_json, pair_id_for
from .stats import dataset_statistics
from .verify import Problem, VerificationReport, verify_dataset
from .writer import DatasetWriter

__all__ = [
    "EXPORT_FORMATS",
    "DatasetWriter",
    "PairSource",
    "Problem",
    "Revision",
    "TrainingPair",
    "VerificationReport",
    "canonical_json",
    "dataset_statistics",
    "export_dataset",
    "pair_id_for",
    "verify_dataset",
]
