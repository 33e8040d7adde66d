"""Benchmarks: each prints massivekit against a named peer, measured in one run."""
