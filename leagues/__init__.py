"""Leagues: members compete in cohorts of about N within ordered divisions, one board period at a time.

A league sits on a leaderboard: it reads each member's score of the board's period (through
:class:`engine.grants.BoardScores`, which the composition root implements from the board totals in SQL),
places scorers into cohorts in join order, and at the period's close promotes the top K and relegates
the bottom K of every cohort and pays each division's rewards, exactly once. Pure rules in
:mod:`leagues.models`, tables in :mod:`leagues.orm`, SQL in :mod:`leagues.repository`, the placement and
closing rounds in :mod:`leagues.service`. See docs/leagues.md.
"""
