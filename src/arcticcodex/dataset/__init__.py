"""Signed datasets: TrainingPair records, their signatures, and (to come) the writer, verifier and exports."""

from __future__ import annotations

from .record import PairSource, Revision, TrainingPair, canonical_json, pair_id_for

__all__ = ["PairSource", "Revision", "TrainingPair", "canonical_json", "pair_id_for"]
