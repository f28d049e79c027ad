"""Benchmarks: numbers a script prints (``make bench``), never timed tests.

The machine is shared and noisy: each benchmark reports ratios measured in the same run next to
the absolute numbers, and the absolute numbers are only for comparing runs on one machine.
"""
