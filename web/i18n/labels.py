"""Message families chosen at run time (a campaign's state, a rule type, a period…): value → English msgid.

Each msgid is marked with :func:`N_` so ``pybabel extract`` finds it; :meth:`Translator.label` translates.
"""

from __future__ import annotations


def N_(message: str) -> str:  # the gettext convention for "mark, translate later"
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


#: ``family → value → msgid``.
LABELS: dict[str, dict[str, str]] = {
    "boards.ties": {
        "competition": N_("ties share a rank"),
        "dense": N_("dense ranks"),
        "first_to_reach": N_("first to reach ranks higher"),
    },
    "boards.visibility": {
        "members": N_("Members only"),
        "public": N_("Public"),
    },
    "campaigns.recurrence": {
        "daily": N_("Every day"),
        "monthly": N_("Every month"),
        "none": N_("Once"),
        "weekly": N_("Every week"),
    },
    "challenge.recurrence": {
        "daily": N_("new every day"),
        "monthly": N_("new every month"),
        "weekly": N_("new every week"),
    },
    "challenge.state": {
        "active": N_("Active"),
        "completed": N_("Completed"),
        "draft": N_("Draft"),
        "ended": N_("Ended"),
        "paused": N_("Paused"),
        "scheduled": N_("Coming soon"),
    },
    "event": {
        "purchase": N_("Purchase"),
        "referral": N_("Friend referred"),
        "review": N_("Review"),
        "social_tag": N_("Social tag"),
        "survey": N_("Survey answered"),
        "visit": N_("Store visit"),
    },
    "profile": {
        "city": N_("City"),
        "country": N_("Country"),
        "email": N_("Email"),
        "erased_at": N_("Erased on"),
        "region": N_("Region"),
        "store": N_("Store"),
        "tier": N_("Tier"),
    },
    "flash": {
        "adjusted": N_("Points adjusted."),
        "applied": N_("Program applied."),
        "created": N_("Created."),
        "deleted": N_("Removed."),
        "granted": N_("Badge granted."),
        "revoked": N_("Revoked."),
        "saved": N_("Saved."),
        "signed_out": N_("You are signed out."),
    },
    "period": {
        "all_time": N_("All time"),
        "daily": N_("Today"),
        "monthly": N_("This month"),
        "weekly": N_("This week"),
        "window": N_("Campaign"),
    },
    "rule": {
        "all_of": N_("All steps, any order"),
        "count": N_("Count"),
        "distinct": N_("Distinct values"),
        "first": N_("First time"),
        "sequence": N_("Steps in order"),
        "streak": N_("Streak"),
        "sum": N_("Sum"),
    },
    "unit": {
        "days": N_("days in a row"),
        "different": N_("different"),
        "steps": N_("steps"),
        "times": N_("times"),
        "weeks": N_("weeks in a row"),
    },
}
