"""Helpers that drive Pulumi for scripts/pulumi-local, the end-to-end tests and the benchmarks."""
