"""Classifier scores for the proxy: the one link to the classifiers package (``bank.py``), the scorer that
classifier checks and ``/v1/moderations`` ask (``scorer.py``, with its score cache) and the fair, bounded
scheduler of its batches (``scheduler.py``)."""

from shieldkit.guardrails.scoring.bank import BankLoader, ClassifierUse
from shieldkit.guardrails.scoring.scorer import ClassifierScorer, Head, HeadScores, Scorer, ScoringOptions

__all__ = ["BankLoader", "ClassifierScorer", "ClassifierUse", "Head", "HeadScores", "Scorer", "ScoringOptions"]
