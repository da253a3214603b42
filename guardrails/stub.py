"""Deprecated spelling: ``python -m shieldkit.guardrails.stub`` runs ``python -m shieldkit.guardrails.upstream.stub``
(the echo server moved there); this alias goes away in the next minor version."""

import warnings

if __name__ == "__main__":
    from shieldkit.guardrails.upstream.stub import main

    warnings.warn("python -m shieldkit.guardrails.stub is deprecated: use python -m shieldkit.guardrails.upstream.stub",
                  FutureWarning, stacklevel=1)
    main()
