"""`arcticcodex eval`: a student measured against its teacher on a signed dataset's held-out questions.

:mod:`.heldout` reads the questions (verified first), :mod:`.students` reaches the models (a teacher
entry, or a model folder served by :mod:`.serving`), :mod:`.run` asks and judges, :mod:`.metrics`
aggregates with bootstrap intervals, :mod:`.store` keeps each result beside the model's receipt,
and :mod:`.chart` draws the comparison.
"""
