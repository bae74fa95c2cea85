"""Benchmarks of the harness against baselines measured in the same run: `python3 -m bench`.

One module per row of bench/RESULTS.md (see __main__.ROWS); core.py holds what rows share.
"""
