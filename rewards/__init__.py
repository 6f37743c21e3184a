"""Rewards: the catalog, code pools, redemptions and the points liability (see docs/rewards.md)."""
