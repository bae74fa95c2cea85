"""Built-in `python:` steps for checks that compare a list on the board with a list in the profile."""
