"""Default notification emails, one Jinja2 template per kind and locale (brands override them in the console).

A template sees ``member`` (the name), ``brand``, ``data`` (the notification's fields: ``badge``, ``name``,
``challenge``, ``tier``, ``points``, ``expires_at``, ``reward``, ``code``, ``board``, ``rank``…), ``portal_url``
and ``unsubscribe_url``; the digest sees ``items``, each with ``kind``, ``data`` and ``line`` (its one-line
summary). ``label(value)`` picks the member's language from a name given per language.
"""

from __future__ import annotations

#: One-line summaries (digest lines, the portal feed), by kind, per locale.
LINES: dict[str, dict[str, str]] = {
    "en": {
        "badge_earned": "You earned the badge {{ label(data.name) or data.badge }}.",
        "challenge_completed": "You completed the challenge {{ data.challenge }}.",
        "tier_changed": "Your tier is now {{ data.tier }}.",
        "points_expiring": "{{ data.points }} points expire on {{ data.expires_at[:10] }}.",
        "reward_redeemed": "You redeemed {{ data.reward }}{% if data.code %} (code {{ data.code }}){% endif %}.",
        "overtaken": "Someone overtook you on {{ data.board }}: you are now number {{ data.rank }}.",
        "referral_qualified": "A referral qualified: {{ data.friend }} joined through {{ data.referrer }}.",
    },
    "it": {
        "badge_earned": "Hai ottenuto il badge {{ label(data.name) or data.badge }}.",
        "challenge_completed": "Hai completato la sfida {{ data.challenge }}.",
        "tier_changed": "Il tuo livello ora è {{ data.tier }}.",
        "points_expiring": "{{ data.points }} punti scadono il {{ data.expires_at[:10] }}.",
        "reward_redeemed": "Hai riscattato {{ data.reward }}{% if data.code %} (codice {{ data.code }}){% endif %}.",
        "overtaken": "Qualcuno ti ha superato in {{ data.board }}: ora sei al posto {{ data.rank }}.",
        "referral_qualified": "Un invito è andato a buon fine: {{ data.friend }} si è iscritto tramite {{ data.referrer }}.",
    },
}

SUBJECTS: dict[str, dict[str, str]] = {
    "en": {
        "badge_earned": "New badge at {{ brand }}",
        "challenge_completed": "Challenge completed at {{ brand }}",
        "tier_changed": "Your {{ brand }} tier changed",
        "points_expiring": "Your {{ brand }} points are about to expire",
        "reward_redeemed": "Your {{ brand }} reward",
        "overtaken": "You were overtaken on a {{ brand }} leaderboard",
        "referral_qualified": "Your {{ brand }} referral qualified",
        "digest": "Your day at {{ brand }}",
    },
    "it": {
        "badge_earned": "Nuovo badge da {{ brand }}",
        "challenge_completed": "Sfida completata da {{ brand }}",
        "tier_changed": "Il tuo livello {{ brand }} è cambiato",
        "points_expiring": "I tuoi punti {{ brand }} stanno per scadere",
        "reward_redeemed": "Il tuo premio {{ brand }}",
        "overtaken": "Sei stato superato in una classifica {{ brand }}",
        "referral_qualified": "Il tuo invito {{ brand }} è andato a buon fine",
        "digest": "La tua giornata da {{ brand }}",
    },
}

BODY = {
    "en": """Hello {{ member }},

{{ line }}

See everything in your rewards: {{ portal_url }}

--
You receive this because you are a member of {{ brand }}'s program.
Stop these emails: {{ unsubscribe_url }}
""",
    "it": """Ciao {{ member }},

{{ line }}

Trovi tutto nei tuoi premi: {{ portal_url }}

--
Ricevi questa email perché partecipi al programma di {{ brand }}.
Non ricevere più queste email: {{ unsubscribe_url }}
""",
}

DIGEST = {
    "en": """Hello {{ member }},

Here is what happened today:
{% for item in items %}
- {{ item.line }}
{%- endfor %}

See everything in your rewards: {{ portal_url }}

--
You receive one email a day because you chose the daily digest at {{ brand }}.
Stop these emails: {{ unsubscribe_url }}
""",
    "it": """Ciao {{ member }},

ecco cosa è successo oggi:
{% for item in items %}
- {{ item.line }}
{%- endfor %}

Trovi tutto nei tuoi premi: {{ portal_url }}

--
Ricevi una email al giorno perché hai scelto il riepilogo giornaliero di {{ brand }}.
Non ricevere più queste email: {{ unsubscribe_url }}
""",
}


def default_template(kind: str, locale: str) -> tuple[str, str]:
    """``(subject, body)`` of the default template for ``kind`` (or ``digest``) in ``locale`` (``en`` or ``it``)."""
    lang = locale if locale in SUBJECTS else "en"
    body = DIGEST[lang] if kind == "digest" else BODY[lang].replace("{{ line }}", LINES[lang][kind])
    return SUBJECTS[lang][kind], body
