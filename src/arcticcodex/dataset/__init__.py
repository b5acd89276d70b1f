"""Signed datasets: TrainingPair records, their signatures, the writer, and (to come) the verifier and exports."""

from __future__ import annotations

from .record import PairSource, Revision, TrainingPair, canonical_json, pair_id_for
from .writer import DatasetWriter

__all__ = ["DatasetWriter", "PairSource", "Revision", "TrainingPair", "canonical_json", "pair_id_for"]
