"""Segments, personalised offers and experiments.

Segments (:mod:`segments.models`) are named predicates over member attributes and behaviour metrics that
SQL computes from the event log, the points ledger and balances, and — through engine Protocols — other
domains' tables (:mod:`segments.metrics`). Offers (:mod:`segments.offers`) are bonuses targeted at a segment
or a member list, with a window, a per-member limit and a budget the database enforces; an offer may run as
an A/B experiment (:mod:`segments.experiments`). The pipeline step is :mod:`segments.processor`.
See docs/segments.md.
"""
