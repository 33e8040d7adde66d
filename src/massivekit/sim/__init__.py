"""A deterministic simulated market: instruments, random-walk prices, wire-ready events.

Pure data generation, no I/O: the mock server streams it, the proxy's test
scenarios replay it, the benchmarks frame it. It sits beside those users so
that none of them depends on another to get market data.
"""
