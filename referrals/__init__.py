"""Referrals: codes and links, friends linked to referrers, rewards paid exactly once (see docs/members.md)."""
