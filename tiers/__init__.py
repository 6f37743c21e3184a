"""Tiers: ordered levels members qualify for by a metric over a window, with benefits and a history.

Pure models and rules (:mod:`tiers.models`, :mod:`tiers.rules`), tables (:mod:`tiers.orm`), SQL
(:mod:`tiers.repository`), the pipeline step that upgrades inside the event's transaction
(:mod:`tiers.processor`) and the re-evaluation job and member operations (:mod:`tiers.service`).
See docs/tiers.md.
"""
