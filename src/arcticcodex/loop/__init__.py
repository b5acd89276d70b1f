"""The loop closed: a student drafts, the teachers correct it, it learns from that, it is measured, again.

See :mod:`.run` for the steps, :mod:`.journal` for how a loop survives a kill, :mod:`.stopping` for
when it stops early and :mod:`.report` for its table and chart.
"""

from .journal import LoopJournal, LoopRecord, LoopStep
from .run import LoopObserver, StudentLoop
from .settings import LOOP_METHODS, LoopSettings

__all__ = ["LOOP_METHODS", "LoopJournal", "LoopObserver", "LoopRecord", "LoopSettings", "LoopStep", "StudentLoop"]
