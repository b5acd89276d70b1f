"""ArcticCodex: teacher-verified, evidence-grounded, signed fine-tuning datasets."""

__version__ = "0.1.0"
