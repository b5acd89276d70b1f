"""Training a student on a signed dataset, and the receipt that links the model to its data.

See :mod:`.trainer` for the run and :mod:`.receipt` for what the receipt binds and how it is checked.
"""

from .receipt import RECEIPT_FILE, ReceiptReport
from .settings import METHODS, TrainSettings
from .trainer import TrainingResult, train_model

__all__ = ["METHODS", "RECEIPT_FILE", "ReceiptReport", "TrainSettings", "TrainingResult", "train_model"]
