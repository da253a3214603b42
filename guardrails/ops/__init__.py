"""Running the proxy: the audit log (and the liveness files of its writers), Prometheus metrics and rate limits."""
