"""Training and evaluation of model plugins on manifest splits.

Public calls: :func:`train` (one fold or ``fold="all"``), :func:`predict_out_of_fold`,
:func:`evaluate` (a finished run, or a run on another manifest), :func:`list_model_rows`.
"""

from ferdata.training.api import RunResult, predict_out_of_fold, train
from ferdata.training.evaluate import evaluate, list_model_rows

__all__ = ["RunResult", "evaluate", "list_model_rows", "predict_out_of_fold", "train"]
