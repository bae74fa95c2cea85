"""The device farm: boards reached through labgrid's coordinator and exporters.

A farm is labgrid's own distributed engine (one `labgrid-coordinator`, an
exporter per lab host); the harness adds what a CI farm needs on top of it
and nothing that would replace it: reservations that are always released
(keeper.py, with a lease that reaper.py enforces when the holder died), fan-out
of one plan over many places (fanout.py), board health as LAVA keeps it
(health.py), and a virtual farm of exported virtual boards (export.py) so all
of this runs on one machine. docs/farm.md is the user's guide.
"""
