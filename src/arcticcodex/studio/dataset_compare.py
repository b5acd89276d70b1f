"""Comparing two datasets on one page: counts per split, quality histograms side by side, shared pairs.

The two are picked on the Datasets page (a GET form, so a comparison is a link).  Each side keeps its
own verdicts: a dataset that is not intact contributes nothing but its problems, and an untrusted one
only when the visitor ticked "include datasets whose signer I do not trust", as on the dataset page.
The overlap comes from the two record indexes (:mod:`arcticcodex.dataset.comparison`), remembered by
both datasets' identities, so viewing the same comparison again costs two lookups.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..dataset.record_index import RecordIndex
from ..errors import UserError
from .charts import histogram
from .datasets import verdict_words, written_datasets
from .pages import page

if TYPE_CHECKING:
    from .datasets import DatasetPages

__all__ = ["DatasetComparePage"]


class DatasetComparePage:
    """``/datasets/compare?a=RUN&b=RUN``: two datasets of this workspace side by side."""

    def __init__(self, pages: DatasetPages) -> None:
        self.pages = pages

    async def compare(self, request: Request) -> Response:
        params = request.query_params
        first, second = params.get("a", ""), params.get("b", "")
        return await self.pages.workers.run(self._compare, first, second, params.get("allow_untrusted") == "1")

    def _compare(self, first: str, second: str, show_untrusted: bool) -> Response:
        choices = written_datasets(self.pages.workspace)
        context: dict[str, Any] = {"choices": choices, "a": first, "b": second, "allow_untrusted": show_untrusted}
        if not first or not second:
            return page("dataset_compare.html", "Compare datasets", "Datasets", sides=[], comparison=None, **context)
        if first == second:
            raise UserError("pick two different datasets to compare (both choices name the same one)")
        sides: list[dict[str, Any]] = []
        indexes: list[RecordIndex] = []
        try:
            for run_id in (first, second):
                dataset = self.pages.find(run_id)
                report, index = self.pages.shown(Path(dataset["out"]), show_untrusted)
                side: dict[str, Any] = {
                    "dataset": dataset,
                    "verdict": verdict_words(report),
                    "shown": index is not None,
                }
                if index is not None:
                    indexes.append(index)
                    summary = index.summary()
                    side["counts"] = {name: summary[name] for name in ("train", "validation", "rejected", "accepted")}
                    side["chart"] = histogram(summary["accepted_histogram"], width=420, height=170)
                sides.append(side)
            comparison = self.pages.comparisons.compare(*indexes) if len(indexes) == 2 else None
        finally:
            for index in indexes:
                index.close()
        return page(
            "dataset_compare.html", "Compare datasets", "Datasets", sides=sides, comparison=comparison, **context
        )
