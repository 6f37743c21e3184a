"""Wallet passes: an Apple Wallet ``.pkpass`` membership card and a Google Wallet loyalty object per member.

Pure pass building (:mod:`wallet.models`, :mod:`wallet.pkpass`, :mod:`wallet.google`, :mod:`wallet.images`),
sealing of the brand's private keys at rest (:mod:`wallet.sealing`), tables (:mod:`wallet.orm`), SQL
(:mod:`wallet.repository`), the PassKit web service's logic (:mod:`wallet.service`) and the APNs push behind
an interface (:mod:`wallet.push`). The member's state on a card (points, tier, rank, challenge progress) is
read by the web layer and handed in as a :class:`wallet.models.CardState`. See docs/wallet.md.
"""
