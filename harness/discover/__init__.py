"""`harness board discover`: draft a board profile from a unit that is running.

probe.py reads what the unit says about itself (device tree or DMI identity, interfaces),
draft.py turns that and the inventory facts (harness/run/facts.py) into a profile with
comments where a person must decide, and cli.py reaches the unit and writes the file.
"""
