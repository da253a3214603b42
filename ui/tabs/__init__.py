"""One module per tab of the debugger app; each exposes ``render(...)``."""
