"""shieldkit: a Responsible-AI safety toolkit around a real Gemma.

Parts (each a sub-package, imported on demand; nothing is built at import time):

- ``shieldkit.model``: the Gemma runtime (embedded Gemma 3 270M or any local Gemma).
- ``shieldkit.classifiers``: few-shot LoRA safety classifiers.
- ``shieldkit.guardrails``: the OpenAI-compatible guardrail proxy.
- ``shieldkit.debugger`` and ``shieldkit.ui``: saliency and attention, explored in Streamlit.
"""

__version__ = "0.1.0"
