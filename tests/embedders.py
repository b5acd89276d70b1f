"""Embedding backends for tests: the hashing backend, wrapped to record what is embedded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arcticcodex.vault import HashingBackend


class RecordingBackend:
    """HashingBackend(dimensions) that keeps every call's texts, to assert on what was actually embedded."""

    def __init__(self, dimensions: int = 64) -> None:
        self.inner = HashingBackend(dimensions)
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def texts(self) -> list[str]:
        """Every text embedded so far, in order."""
        return [text for call in self.calls for text in call]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.embed(texts)
