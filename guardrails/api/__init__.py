"""The HTTP layer: one router per resource (``routers/``), FastAPI dependencies, request parsing and schemas,
OpenAI-style errors and response shapes, the OpenAPI document and the request middleware."""
