"""Running the proxy: the audit log (its tables and migrations, its database, the owners of its pending rows),
Prometheus metrics (one view of several workers) and rate limits (in-process or on Redis)."""
