"""Fault injection for flask-hyper: real processes, real brokers, every event counted.

``python -m faults.run`` (``make faults``) runs the scenarios and writes
FAULTS.md. :mod:`faults.app` is the service under test, :mod:`faults.ledger`
its record of handlings, and the ``*_scenarios`` modules inject the faults.
"""
