"""Benchmarks: print figures next to a reference (libtorrent) measured in the same run.

Not tests: run them by hand, e.g. ``python -m bench.create_torrent --size 1GiB``.
"""
