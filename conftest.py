"""Repository-level pytest configuration.

The suite lives in tests/; run folders, board profiles and plans are data,
never test modules.
"""

collect_ignore = ["results", "boards", "testplans", "bench"]
