"""The Faust engine: the one wiring module (`app`: FaustEngine), its checkpoint of the
one state table, the continuity layer for faust-streaming's rebalance bugs, and the
library's private names (`internals`)."""
