"""report stage of the harness flow (see harness/README.md)."""
