"""Classifier scores for the proxy: the one link to the classifiers package (``bank.py``), the protocol every
scorer implements (``protocol.py``), the in-process scorer that classifier checks and ``/v1/moderations`` ask
(``scorer.py``, with its score cache), the fair, bounded scheduler of its batches (``scheduler.py``), and the
classifier scorer as its own HTTP service (``service.py``, ``shieldkit serve-classifiers``) with the proxy's client
for it (``remote.py``)."""

from shieldkit.guardrails.scoring.bank import BankLoader, ClassifierUse
from shieldkit.guardrails.scoring.protocol import Head, HeadScores, ManagedScorer, Scorer
from shieldkit.guardrails.scoring.scorer import ClassifierScorer, ScoringOptions

__all__ = ["BankLoader", "ClassifierScorer", "ClassifierUse", "Head", "HeadScores", "ManagedScorer", "Scorer",
           "ScoringOptions"]
