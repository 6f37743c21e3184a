"""Badges: definitions, levels, exactly-once awards, badge art and Open Badges credentials (see docs/badges.md)."""
