"""The Faust engine: the one wiring module (`app`), the continuity layer for
faust-streaming's rebalance bugs, tables as state, the worker entry point and its
web pages."""
