"""Italian and English for the portal, console and widgets: message catalogs and locale formatting.

The member's locale decides (``it``, ``it-IT`` → Italian); then an explicit choice (``?lang=``), then the
browser's ``Accept-Language``; English otherwise. Messages are ``str.format`` templates; Jinja escapes
the formatted result, so a value interpolated into a message is never markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

SUPPORTED = ("en", "it")
DEFAULT = "en"


def normalise(tag: str | None) -> str | None:
    """The supported language of a BCP 47 tag (``it-IT`` → ``it``), or ``None``."""
    if not tag:
        return None
    lang = tag.strip().replace("_", "-").split("-")[0].lower()
    return lang if lang in SUPPORTED else None


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an ``Accept-Language`` header, or ``None``."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        lang = normalise(tag)
        if lang is not None and quality > 0:
            ranked.append((-quality, index, lang))
    return min(ranked)[2] if ranked else None


def negotiate(*candidates: str | None, accept_language: str | None = None) -> str:
    """The first supported language among ``candidates``, then ``Accept-Language``, then English."""
    for candidate in candidates:
        lang = normalise(candidate)
        if lang is not None:
            return lang
    return from_accept_language(accept_language) or DEFAULT


class Translator:
    """Messages and number/date formatting in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in SUPPORTED else DEFAULT
        self._messages = CATALOG[self.lang]
        self._fallback = CATALOG[DEFAULT]

    def __call__(self, key: str, /, **values: object) -> str:
        """The message ``key`` with ``values`` filled in (English, then the key itself, if missing)."""
        text = self._messages.get(key) or self._fallback.get(key) or key
        return text.format(**values)

    def event(self, event_type: str) -> str:
        """A member-facing name of an event type (``review`` → ``Review``), translated when known."""
        key = f"event.{event_type}"
        text = self._messages.get(key) or self._fallback.get(key)
        return text or event_type.replace("_", " ").replace("-", " ").capitalize()

    def plural(self, key: str, count: int, /, **values: object) -> str:
        """``key.one`` or ``key.other`` depending on ``count`` (both languages pluralise alike)."""
        form = "one" if count == 1 else "other"
        return self(f"{key}.{form}", count=self.number(count), **values)

    def number(self, value: float, decimals: int | None = None) -> str:
        """``1234.5`` as ``1,234.5`` (English) or ``1.234,5`` (Italian).

        Without ``decimals``, integers show none and other numbers one; with it, exactly that many.
        """
        if decimals is not None:
            text = f"{value:,.{decimals}f}"
        else:
            fractional = isinstance(value, float) and not value.is_integer()
            text = f"{value:,.1f}" if fractional else f"{int(value):,}"
        if self.lang == "it":
            text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return text

    def signed(self, value: int) -> str:
        """A points amount with its sign (``+50``, ``−20``)."""
        return ("+" if value > 0 else "−" if value < 0 else "") + self.number(abs(value))

    def date(self, value: dt.date | dt.datetime, tz: ZoneInfo | None = None) -> str:
        """``20 nov 2026`` / ``Nov 20, 2026``; an instant is shown in ``tz``."""
        if isinstance(value, dt.datetime) and tz is not None:
            value = value.astimezone(tz)
        month = self(f"month.{value.month}")
        if self.lang == "it":
            return f"{value.day} {month} {value.year}"
        return f"{month} {value.day}, {value.year}"

    def datetime(self, value: dt.datetime, tz: ZoneInfo) -> str:
        """A date with the local time (24-hour clock in both languages)."""
        local = value.astimezone(tz)
        return f"{self.date(local)}, {local:%H:%M}"

    def short_date(self, value: dt.date) -> str:
        """``20/11`` (Italian) or ``11/20`` (English), for chart axes."""
        return f"{value.day}/{value.month}" if self.lang == "it" else f"{value.month}/{value.day}"

    def until(self, deadline: dt.datetime, now: dt.datetime) -> str:
        """How long is left before ``deadline``: ``3 days left``, ``5 hours left``, ``ended``."""
        seconds = (deadline - now).total_seconds()
        if seconds <= 0:
            return self("time.ended")
        if seconds < 3600:
            return self.plural("time.minutes_left", max(1, int(seconds // 60)))
        if seconds < 2 * 86400:
            return self.plural("time.hours_left", int(seconds // 3600))
        return self.plural("time.days_left", int(seconds // 86400))

    def since(self, moment: dt.datetime, now: dt.datetime) -> str:
        """How long ago ``moment`` was: ``just now``, ``3 hours ago``, ``2 days ago``."""
        seconds = (now - moment).total_seconds()
        if seconds < 60:
            return self("time.just_now")
        if seconds < 3600:
            return self.plural("time.minutes_ago", int(seconds // 60))
        if seconds < 86400:
            return self.plural("time.hours_ago", int(seconds // 3600))
        return self.plural("time.days_ago", int(seconds // 86400))


def missing_keys(keys: Iterable[str]) -> dict[str, list[str]]:
    """For each language, the ``keys`` its catalog lacks (tests keep the catalogs complete)."""
    wanted = set(keys)
    return {lang: sorted(wanted - set(CATALOG[lang])) for lang in SUPPORTED}


#: Every message as ``key: (English, Italian)``; ``.one``/``.other`` suffixes are plural forms.
_MESSAGES: dict[str, tuple[str, str]] = {
    # shared
    "a11y.skip": ("Skip to content", "Vai al contenuto"),
    "error.generic": ("Something went wrong", "Qualcosa è andato storto"),
    "error.not_found": ("Not found", "Non trovato"),
    "form.cancel": ("Cancel", "Annulla"),
    "form.save": ("Save", "Salva"),
    "form.fix_errors": ("Please correct the highlighted fields.", "Correggi i campi evidenziati."),
    "form.error.too_long": ("Use at most {max} characters.", "Usa al massimo {max} caratteri."),
    "form.error.number": ("Enter a number.", "Inserisci un numero."),
    "form.error.min": ("Enter at least {limit}.", "Inserisci almeno {limit}."),
    "form.error.more_than": ("Enter more than {limit}.", "Inserisci più di {limit}."),
    "form.error.max": ("Enter at most {limit}.", "Inserisci al massimo {limit}."),
    "form.error.required": ("This is required.", "Campo obbligatorio."),
    "form.error.pattern": ("Use lowercase letters, digits, - and _ only.", "Usa solo lettere minuscole, cifre, - e _."),
    "pager.label": ("Pages", "Pagine"),
    "pager.newest": ("Newest", "Più recenti"),
    "pager.older": ("Older", "Meno recenti"),
    "flash.saved": ("Saved.", "Salvato."),
    "flash.created": ("Created.", "Creato."),
    "flash.deleted": ("Removed.", "Rimosso."),
    "flash.revoked": ("Revoked.", "Revocato."),
    "flash.granted": ("Badge granted.", "Badge assegnato."),
    "flash.adjusted": ("Points adjusted.", "Punti rettificati."),
    "flash.applied": ("Program applied.", "Programma applicato."),
    "flash.signed_out": ("You are signed out.", "Sei uscito."),
    "month.1": ("Jan", "gen"),
    "month.2": ("Feb", "feb"),
    "month.3": ("Mar", "mar"),
    "month.4": ("Apr", "apr"),
    "month.5": ("May", "mag"),
    "month.6": ("Jun", "giu"),
    "month.7": ("Jul", "lug"),
    "month.8": ("Aug", "ago"),
    "month.9": ("Sep", "set"),
    "month.10": ("Oct", "ott"),
    "month.11": ("Nov", "nov"),
    "month.12": ("Dec", "dic"),
    "time.ended": ("ended", "terminata"),
    "time.just_now": ("just now", "proprio ora"),
    "time.minutes_left.one": ("{count} minute left", "manca {count} minuto"),
    "time.minutes_left.other": ("{count} minutes left", "mancano {count} minuti"),
    "time.hours_left.one": ("{count} hour left", "manca {count} ora"),
    "time.hours_left.other": ("{count} hours left", "mancano {count} ore"),
    "time.days_left.one": ("{count} day left", "manca {count} giorno"),
    "time.days_left.other": ("{count} days left", "mancano {count} giorni"),
    "time.minutes_ago.one": ("{count} minute ago", "{count} minuto fa"),
    "time.minutes_ago.other": ("{count} minutes ago", "{count} minuti fa"),
    "time.hours_ago.one": ("{count} hour ago", "{count} ora fa"),
    "time.hours_ago.other": ("{count} hours ago", "{count} ore fa"),
    "time.days_ago.one": ("{count} day ago", "{count} giorno fa"),
    "time.days_ago.other": ("{count} days ago", "{count} giorni fa"),
    "event.purchase": ("Purchase", "Acquisto"),
    "event.visit": ("Store visit", "Visita in negozio"),
    "event.review": ("Review", "Recensione"),
    "event.referral": ("Friend referred", "Amico presentato"),
    "event.survey": ("Survey answered", "Sondaggio compilato"),
    "event.social_tag": ("Social tag", "Tag sui social"),
    "unit.times": ("times", "volte"),
    "unit.days": ("days in a row", "giorni di fila"),
    "unit.weeks": ("weeks in a row", "settimane di fila"),
    "unit.different": ("different", "diversi"),
    "unit.steps": ("steps", "passi"),
    "period.all_time": ("All time", "Di sempre"),
    "period.daily": ("Today", "Oggi"),
    "period.weekly": ("This week", "Questa settimana"),
    "period.monthly": ("This month", "Questo mese"),
    "period.window": ("Campaign", "Campagna"),
    "rule.count": ("Count", "Conteggio"),
    "rule.sum": ("Sum", "Somma"),
    "rule.streak": ("Streak", "Serie"),
    "rule.distinct": ("Distinct values", "Valori diversi"),
    "rule.sequence": ("Steps in order", "Passi in ordine"),
    "rule.all_of": ("All steps, any order", "Tutti i passi, in qualsiasi ordine"),
    "rule.first": ("First time", "Prima volta"),
    "board.rank": ("Rank", "Pos."),
    "board.member": ("Member", "Membro"),
    "board.score": ("Score", "Punteggio"),
    "board.you": ("You", "Tu"),
    "board.empty": ("No one on this board yet.", "Nessuno in classifica per ora."),
    # portal
    "portal.nav.label": ("Your program", "Il tuo programma"),
    "portal.nav.home": ("Home", "Home"),
    "portal.nav.challenges": ("Challenges", "Sfide"),
    "portal.nav.badges": ("Badges", "Badge"),
    "portal.nav.leaderboards": ("Leaderboards", "Classifiche"),
    "portal.nav.activity": ("Activity", "Attività"),
    "portal.points_short": ("pts", "pt"),
    "portal.language": ("Language", "Lingua"),
    "portal.sign_out": ("Sign out on this device", "Esci da questo dispositivo"),
    "portal.powered": ("Powered by Questline", "Realizzato con Questline"),
    "portal.live.updated": ("Updated just now.", "Aggiornato ora."),
    "portal.hello": ("Hi {name}!", "Ciao {name}!"),
    "portal.your_points": ("Your points", "I tuoi punti"),
    "portal.tier": ("Tier", "Livello"),
    "portal.badges_earned": ("Badges earned", "Badge ottenuti"),
    "portal.challenges_done": ("Challenges completed", "Sfide completate"),
    "portal.whats_next": ("What's next", "Prossimi traguardi"),
    "portal.see_all": ("See all", "Vedi tutto"),
    "portal.nothing_next": (
        "No open challenges right now: you are all caught up!",
        "Nessuna sfida aperta al momento: sei in pari!",
    ),
    "portal.next_badge": ("Next badge", "Prossimo badge"),
    "portal.badges_count.one": ("You hold {count} badge.", "Hai {count} badge."),
    "portal.badges_count.other": ("You hold {count} badges.", "Hai {count} badge."),
    "portal.no_badges_yet": ("No badges yet: your first one is waiting.", "Ancora nessun badge: il primo ti aspetta."),
    "portal.your_rank": ("Your rank", "La tua posizione"),
    "portal.rank_on": ("#{rank} of {total} on “{board}”", "{rank}° su {total} in “{board}”"),
    "portal.not_ranked": ("You are not on “{board}” yet.", "Non sei ancora in “{board}”."),
    "portal.no_boards": ("No leaderboards yet.", "Ancora nessuna classifica."),
    "portal.recent": ("Recent activity", "Attività recente"),
    "portal.no_activity": ("Nothing here yet.", "Ancora niente qui."),
    "portal.challenges.title": ("Your challenges", "Le tue sfide"),
    "portal.challenges.lead": (
        "Complete them before they end to win points and badges.",
        "Completale prima della scadenza per vincere punti e badge.",
    ),
    "portal.challenges.active": ("Open challenges", "Sfide aperte"),
    "portal.challenges.upcoming": ("Starting soon", "In arrivo"),
    "portal.challenges.done": ("Completed", "Completate"),
    "portal.challenges.none_active": (
        "No open challenges right now. New ones are on the way!",
        "Nessuna sfida aperta ora. Ne arriveranno di nuove!",
    ),
    "portal.badges.title": ("Your badges", "I tuoi badge"),
    "portal.badges.lead": ("{earned} of {total} badges earned.", "{earned} badge ottenuti su {total}."),
    "portal.badges.earned": ("Earned", "Ottenuti"),
    "portal.badges.in_progress": ("In progress", "In corso"),
    "portal.badges.locked": ("Still to earn", "Da conquistare"),
    "portal.badges.hidden_note": (
        "Some badges are secret until someone earns them.",
        "Alcuni badge restano segreti finché qualcuno non li ottiene.",
    ),
    "portal.boards.title": ("Leaderboards", "Classifiche"),
    "portal.boards.lead": (
        "See where you stand. Your row is highlighted.",
        "Guarda a che punto sei. La tua riga è evidenziata.",
    ),
    "portal.boards.your_rank": ("You are #{rank}", "Sei {rank}°"),
    "portal.boards.caption": ("Standings of {board}", "Classifica: {board}"),
    "portal.activity.title": ("Points history", "Storico punti"),
    "portal.activity.lead": (
        "Every point you earned or used, newest first.",
        "Ogni punto guadagnato o usato, dal più recente.",
    ),
    "portal.expired.title": ("This link has expired", "Questo link è scaduto"),
    "portal.expired.message": (
        "For your security, links to your program expire. Open the latest link from the app or email to come back in.",
        "Per la tua sicurezza i link al programma scadono. Apri il link più recente dall'app o dall'email per rientrare.",
    ),
    "portal.invalid.title": ("This link does not work", "Questo link non funziona"),
    "portal.invalid.message": (
        "The link is incomplete or was not issued for you. Open it again from the app or email.",
        "Il link è incompleto o non è stato emesso per te. Aprilo di nuovo dall'app o dall'email.",
    ),
    "portal.signed_out.title": ("You are signed out", "Sei uscito"),
    "portal.signed_out.message": (
        "Open your link from the app or email to come back.",
        "Apri il tuo link dall'app o dall'email per tornare.",
    ),
    "activity.rule": ("Points for an activity", "Punti per un'attività"),
    "activity.challenge": ("Challenge completed", "Sfida completata"),
    "activity.badge": ("Badge bonus", "Bonus badge"),
    "activity.board": ("Leaderboard prize", "Premio in classifica"),
    "activity.adjustment": ("Adjustment", "Rettifica"),
    "challenge.state.active": ("Active", "Attiva"),
    "challenge.state.scheduled": ("Coming soon", "In arrivo"),
    "challenge.state.paused": ("Paused", "In pausa"),
    "challenge.state.ended": ("Ended", "Terminata"),
    "challenge.state.draft": ("Draft", "Bozza"),
    "challenge.state.completed": ("Completed", "Completata"),
    "challenge.join_first": ("Join to take part", "Iscriviti per partecipare"),
    "challenge.join": ("Join this challenge", "Partecipa a questa sfida"),
    "challenge.steps": ("Steps", "Passi"),
    "challenge.step_done": ("done", "fatto"),
    "challenge.progress_of": ("Progress on {title}", "Avanzamento di {title}"),
    "challenge.progress_value": ("{value} of {target}", "{value} su {target}"),
    "challenge.streak": ("Streak {current} · best {longest}", "Serie {current} · record {longest}"),
    "challenge.reward_both": ("{points} points + “{badge}” badge", "{points} punti + badge “{badge}”"),
    "challenge.reward_points": ("{points} points", "{points} punti"),
    "challenge.reward_badge": ("“{badge}” badge", "Badge “{badge}”"),
    "challenge.reward_glory": ("Bragging rights", "Gloria eterna"),
    "challenge.completed_on": ("Completed on {date}", "Completata il {date}"),
    "challenge.starts_on": ("Starts on {date}", "Inizia il {date}"),
    "challenge.no_deadline": ("No deadline", "Nessuna scadenza"),
    "challenge.recurrence.daily": ("new every day", "si rinnova ogni giorno"),
    "challenge.recurrence.weekly": ("new every week", "si rinnova ogni settimana"),
    "challenge.recurrence.monthly": ("new every month", "si rinnova ogni mese"),
    "badge.earned_on": ("Earned {date}", "Ottenuto il {date}"),
    "badge.rarity": ("{percent}% of members have it", "Lo ha il {percent}% dei membri"),
    "badge.times": ("earned {count} times", "ottenuto {count} volte"),
    "badge.progress_of": ("Progress towards {name}", "Avanzamento verso {name}"),
    # widgets
    "widget.live": ("Live", "Live"),
    "widget.updated": ("Updated", "Aggiornato"),
    "widget.standings": ("Standings of {board}", "Classifica: {board}"),
    "widget.badges_of": ("{name}'s badges", "I badge di {name}"),
    "widget.no_badges": ("No badges yet.", "Ancora nessun badge."),
    "widget.to_earn.one": ("{count} more to earn", "ancora {count} da conquistare"),
    "widget.to_earn.other": ("{count} more to earn", "ancora {count} da conquistare"),
    "widget.error": ("This widget cannot be shown", "Questo widget non può essere mostrato"),
    # console: sign-in and navigation
    "login.title": ("Sign in to your console", "Accedi alla console"),
    "login.lead": (
        "Manage your loyalty program: campaigns, badges, leaderboards and members.",
        "Gestisci il programma fedeltà: campagne, badge, classifiche e membri.",
    ),
    "login.email": ("Email", "Email"),
    "login.password": ("Password", "Password"),
    "login.submit": ("Sign in", "Accedi"),
    "login.failed": ("Wrong email or password.", "Email o password errate."),
    "login.throttled": (
        "Too many attempts. Wait a few minutes and try again.",
        "Troppi tentativi. Attendi qualche minuto e riprova.",
    ),
    "login.help": (
        "No account yet? An administrator creates one with `questline admin create`.",
        "Non hai un account? Un amministratore lo crea con `questline admin create`.",
    ),
    "nav.console": ("Console", "Console"),
    "nav.menu": ("Menu", "Menu"),
    "nav.dashboard": ("Dashboard", "Cruscotto"),
    "nav.campaigns": ("Campaigns", "Campagne"),
    "nav.program": ("Program (YAML)", "Programma (YAML)"),
    "nav.badges": ("Badges", "Badge"),
    "nav.leaderboards": ("Leaderboards", "Classifiche"),
    "nav.members": ("Members", "Membri"),
    "nav.keys": ("API keys", "Chiavi API"),
    "nav.webhooks": ("Webhooks", "Webhook"),
    "nav.widgets": ("Widgets", "Widget"),
    "nav.sign_out": ("Sign out", "Esci"),
    # console: dashboard
    "dashboard.title": ("How your program is doing", "Come va il programma"),
    "dashboard.range": ("{start} – {end}", "{start} – {end}"),
    "dashboard.range_label": ("Period", "Periodo"),
    "dashboard.days": ("{days} days", "{days} giorni"),
    "dashboard.members": ("Members", "Membri"),
    "dashboard.members_hint": ("enrolled in total", "iscritti in totale"),
    "dashboard.active": ("Active members", "Membri attivi"),
    "dashboard.active_hint": ("with an event in the last {days} days", "con un evento negli ultimi {days} giorni"),
    "dashboard.events": ("Events", "Eventi"),
    "dashboard.events_hint": ("received in the last {days} days", "ricevuti negli ultimi {days} giorni"),
    "dashboard.points": ("Points issued", "Punti emessi"),
    "dashboard.points_hint": ("by rules, challenges, badges and prizes", "da regole, sfide, badge e premi"),
    "dashboard.events_per_day": ("Events per day", "Eventi al giorno"),
    "dashboard.active_per_day": ("Active members per day", "Membri attivi al giorno"),
    "dashboard.points_per_day": ("Points issued per day", "Punti emessi al giorno"),
    "dashboard.completions": ("Completions per challenge", "Completamenti per sfida"),
    "dashboard.rarity": ("Badge rarity", "Rarità dei badge"),
    "dashboard.rarity_desc": (
        "Share of members holding each badge, rarest first.",
        "Quota di membri che possiede ogni badge, dal più raro.",
    ),
    "dashboard.show_data": ("Show the numbers", "Mostra i numeri"),
    "dashboard.day": ("Day", "Giorno"),
    "dashboard.no_challenges": ("No challenges yet.", "Ancora nessuna sfida."),
    "dashboard.no_badges": ("No badges yet.", "Ancora nessun badge."),
    # console: campaigns
    "campaigns.title": ("Campaigns", "Campagne"),
    "campaigns.lead": (
        "Timed campaigns and the challenges members complete in them.",
        "Campagne a tempo e le sfide che i membri completano.",
    ),
    "campaigns.new": ("New campaign", "Nuova campagna"),
    "campaigns.new_lead": (
        "A campaign has a window and one or more challenges; start with the first one.",
        "Una campagna ha un periodo e una o più sfide: inizia dalla prima.",
    ),
    "campaigns.none": ("No campaigns yet. Create the first one!", "Ancora nessuna campagna. Crea la prima!"),
    "campaigns.campaign": ("Campaign", "Campagna"),
    "campaigns.challenge": ("Challenge", "Sfida"),
    "campaigns.challenges": ("Challenges", "Sfide"),
    "campaigns.no_challenges": ("No challenges in this campaign.", "Nessuna sfida in questa campagna."),
    "campaigns.title_label": ("Title", "Titolo"),
    "campaigns.title_hint": (
        "What members see, e.g. “Autumn reviews”.",
        "Ciò che vedono i membri, es. “Recensioni d'autunno”.",
    ),
    "campaigns.key": ("Key", "Chiave"),
    "campaigns.key_hint": (
        "Lowercase letters, digits, - and _; it cannot change later.",
        "Lettere minuscole, cifre, - e _; non si può cambiare dopo.",
    ),
    "campaigns.description": ("Description", "Descrizione"),
    "campaigns.starts_at": ("Starts", "Inizio"),
    "campaigns.ends_at": ("Ends", "Fine"),
    "campaigns.window_hint": ("In the brand's time ({tz}).", "Nell'ora del brand ({tz})."),
    "campaigns.ends_hint": (
        "Exclusive: an event at exactly this time no longer counts.",
        "Esclusa: un evento esattamente a quest'ora non conta più.",
    ),
    "campaigns.status": ("Status", "Stato"),
    "campaigns.status.live": ("Live", "Attiva"),
    "campaigns.status.draft": ("Draft (hidden)", "Bozza (nascosta)"),
    "campaigns.status.paused": ("Paused", "In pausa"),
    "campaigns.opt_in": ("Opt-in", "Iscrizione"),
    "campaigns.opt_in_label": (
        "Members must join before their events count",
        "I membri devono iscriversi perché gli eventi contino",
    ),
    "campaigns.eligibility": ("Eligibility (optional)", "Idoneità (facoltativa)"),
    "campaigns.eligibility_hint": (
        "A filter over member attributes, e.g. {{field: member.tier, in: [gold, silver]}}.",
        "Un filtro sugli attributi del membro, es. {{field: member.tier, in: [gold, silver]}}.",
    ),
    "campaigns.challenge_title": ("Challenge title", "Titolo della sfida"),
    "campaigns.challenge_title_hint": (
        "e.g. “Write 3 reviews with 4+ stars”.",
        "es. “Scrivi 3 recensioni da 4 stelle in su”.",
    ),
    "campaigns.rule_type": ("Rule", "Regola"),
    "campaigns.rule_type_hint": ("How progress is counted.", "Come si conta l'avanzamento."),
    "campaigns.event_type": ("Event type", "Tipo di evento"),
    "campaigns.event_type_hint": (
        "The `type` your systems send, e.g. review.",
        "Il `type` che inviano i tuoi sistemi, es. review.",
    ),
    "campaigns.target": ("Target", "Obiettivo"),
    "campaigns.target_hint": ("How many (or how much) to complete it.", "Quanti (o quanto) per completarla."),
    "campaigns.property": ("Property", "Proprietà"),
    "campaigns.property_hint": (
        "The event property to add up or tell apart, e.g. amount or store.",
        "La proprietà dell'evento da sommare o distinguere, es. amount o store.",
    ),
    "campaigns.period": ("Streak period", "Periodo della serie"),
    "campaigns.period.day": ("Days", "Giorni"),
    "campaigns.period.week": ("Weeks", "Settimane"),
    "campaigns.steps": ("Steps", "Passi"),
    "campaigns.steps_hint": ("One event type per line.", "Un tipo di evento per riga."),
    "campaigns.filter": ("Filter (optional)", "Filtro (facoltativo)"),
    "campaigns.filter_hint": (
        "YAML or JSON, e.g. {{field: properties.stars, gte: 4}}.",
        "YAML o JSON, es. {{field: properties.stars, gte: 4}}.",
    ),
    "campaigns.recurrence": ("Repeats", "Si ripete"),
    "campaigns.recurrence.none": ("Once", "Una volta"),
    "campaigns.recurrence.daily": ("Every day", "Ogni giorno"),
    "campaigns.recurrence.weekly": ("Every week", "Ogni settimana"),
    "campaigns.recurrence.monthly": ("Every month", "Ogni mese"),
    "campaigns.max_completions": ("Most completions per member", "Completamenti massimi per membro"),
    "campaigns.max_completions_hint": (
        "Only for repeating challenges; empty: no cap.",
        "Solo per le sfide ricorrenti; vuoto: nessun limite.",
    ),
    "campaigns.reward": ("Reward", "Premio"),
    "campaigns.reward_points": ("Bonus points", "Punti bonus"),
    "campaigns.reward_badge": ("Badge", "Badge"),
    "campaigns.no_badge": ("No badge", "Nessun badge"),
    "campaigns.create": ("Create campaign", "Crea campagna"),
    "campaigns.settings": ("Campaign settings", "Impostazioni della campagna"),
    "campaigns.pause": ("Pause", "Metti in pausa"),
    "campaigns.resume": ("Go live", "Attiva"),
    "campaigns.add_challenge": ("Add a challenge", "Aggiungi una sfida"),
    "campaigns.edit_challenge": ("Edit challenge", "Modifica sfida"),
    "campaigns.back_to": ("Campaign {key}", "Campagna {key}"),
    "campaigns.progress_kept": (
        "Members keep their progress when you edit; a different rule type starts it again.",
        "I membri conservano l'avanzamento quando modifichi; un tipo di regola diverso lo fa ripartire.",
    ),
    "campaigns.archive": ("Archive", "Archivia"),
    "campaigns.completions": ("Completions", "Completamenti"),
    "campaigns.completions_count.one": ("{count} completion", "{count} completamento"),
    "campaigns.completions_count.other": ("{count} completions", "{count} completamenti"),
    "campaigns.state": ("State", "Stato"),
    "campaigns.window": ("{start} – {end}", "{start} – {end}"),
    "campaigns.from": ("From {start}", "Dal {start}"),
    "campaigns.until": ("Until {end}", "Fino al {end}"),
    "campaigns.always": ("No time limit", "Senza limiti di tempo"),
    "campaigns.error.key_taken": (
        "This key is already used; choose another.",
        "Questa chiave è già usata: scegline un'altra.",
    ),
    "campaigns.error.yaml": ("Not valid YAML or JSON: {error}", "YAML o JSON non valido: {error}"),
    # console: program
    "program.title": ("Program as code", "Programma come codice"),
    "program.lead": (
        "The whole program in one YAML document: check it, apply it, or simulate it on past events.",
        "L'intero programma in un documento YAML: verificalo, applicalo o simulalo sugli eventi passati.",
    ),
    "program.document": ("Program document", "Documento del programma"),
    "program.check": ("Check (dry run)", "Verifica (prova)"),
    "program.apply": ("Apply", "Applica"),
    "program.apply_hint": (
        "Applying is atomic and recorded as a new version; members keep their progress.",
        "L'applicazione è atomica e registrata come nuova versione; i membri conservano l'avanzamento.",
    ),
    "program.invalid": (
        "The document has a mistake; nothing was changed.",
        "Il documento contiene un errore: non è cambiato nulla.",
    ),
    "program.at": ("at", "in"),
    "program.would_change": ("Applying would change:", "Applicandolo cambierebbe:"),
    "program.no_changes": (
        "The document matches the current program.",
        "Il documento coincide con il programma attuale.",
    ),
    "program.simulate": ("Simulate on past events", "Simula sugli eventi passati"),
    "program.simulate_hint": (
        "Replays your stored events through the document above (saved or not) and reports what it would have cost. Nothing is written.",
        "Riesegue gli eventi salvati con il documento qui accanto (salvato o no) e mostra quanto sarebbe costato. Non viene scritto nulla.",
    ),
    "program.from": ("From", "Dal"),
    "program.to": ("To", "Al"),
    "program.run": ("Simulate", "Simula"),
    "program.results": ("Simulation results", "Risultati della simulazione"),
    "program.events": ("Events replayed", "Eventi rieseguiti"),
    "program.members": ("Members", "Membri"),
    "program.cost": ("Points it would issue", "Punti che emetterebbe"),
    "program.cost_split": (
        "{rules} from rules · {challenges} from challenges",
        "{rules} da regole · {challenges} da sfide",
    ),
    "program.per_challenge": ("Per challenge", "Per sfida"),
    "program.no_challenges": ("No challenges in the document.", "Nessuna sfida nel documento."),
    "program.top": ("Top members", "Membri migliori"),
    "program.truncated": (
        "The replay stopped at its event limit; figures are partial.",
        "La simulazione si è fermata al limite di eventi: i dati sono parziali.",
    ),
    "program.versions": ("Versions", "Versioni"),
    "program.no_versions": ("No versions recorded yet.", "Ancora nessuna versione registrata."),
    "program.more": ("(+{count} more)", "(+{count} altre)"),
    "program.error.range": ("“To” must come after “from”.", "“Al” deve venire dopo “dal”."),
    # console: badges
    "badges.title": ("Badges", "Badge"),
    "badges.lead": (
        "What members collect. Art is generated in your colours unless you upload an image.",
        "Ciò che i membri collezionano. L'immagine è generata nei tuoi colori se non ne carichi una.",
    ),
    "badges.new": ("New badge", "Nuovo badge"),
    "badges.badge": ("Badge", "Badge"),
    "badges.holders.one": ("{count} holder", "{count} possessore"),
    "badges.holders.other": ("{count} holders", "{count} possessori"),
    "badges.inactive": ("Inactive", "Inattivo"),
    "badges.hidden": ("Secret", "Segreto"),
    "badges.repeatable": ("Repeatable", "Ripetibile"),
    "badges.definition": ("Definition", "Definizione"),
    "badges.name": ("Name", "Nome"),
    "badges.criteria": ("How to earn it", "Come ottenerlo"),
    "badges.criteria_hint": (
        "Shown to members; written from the rule when empty.",
        "Mostrato ai membri; se vuoto è scritto dalla regola.",
    ),
    "badges.category": ("Category", "Categoria"),
    "badges.points": ("Bonus points", "Punti bonus"),
    "badges.points_hint": (
        "Posted when the badge is awarded (levels give their own).",
        "Accreditati all'assegnazione (i livelli hanno i propri).",
    ),
    "badges.rule": ("Direct rule (optional)", "Regola diretta (facoltativa)"),
    "badges.rule_hint": (
        "Award it after a number of matching events. Leave empty for badges given by challenges, leaderboards or by hand.",
        "Assegnalo dopo un certo numero di eventi. Lascia vuoto per badge dati da sfide, classifiche o a mano.",
    ),
    "badges.count": ("Events needed", "Eventi necessari"),
    "badges.count_hint": ("Ignored when the badge has levels.", "Ignorato se il badge ha livelli."),
    "badges.levels": ("Levels", "Livelli"),
    "badges.levels_hint": (
        "One per line: key threshold [points] [name], e.g. “bronze 1”, “silver 10 50”, “gold 50 200”.",
        "Uno per riga: chiave soglia [punti] [nome], es. “bronze 1”, “silver 10 50”, “gold 50 200”.",
    ),
    "badges.options": ("Options", "Opzioni"),
    "badges.active": ("Active (can be awarded)", "Attivo (può essere assegnato)"),
    "badges.hidden_label": ("Secret until earned", "Segreto finché non viene ottenuto"),
    "badges.repeatable_label": ("Can be earned again and again (×N)", "Si può ottenere più volte (×N)"),
    "badges.preview": ("Preview art", "Anteprima immagine"),
    "badges.art": ("Art", "Immagine"),
    "badges.art_of": ("Art of {name}", "Immagine di {name}"),
    "badges.art_hint": (
        "Generated from the name, icon and colour; levels get bronze, silver and gold rims.",
        "Generata da nome, icona e colore; i livelli hanno bordi bronzo, argento e oro.",
    ),
    "badges.icon": ("Icon", "Icona"),
    "badges.icon_initials": ("Initials of the name", "Iniziali del nome"),
    "badges.color": ("Colour", "Colore"),
    "badges.own_color": (
        "Use its own colour (else the brand's)",
        "Usa un colore proprio (altrimenti quello del brand)",
    ),
    "badges.error.level_line": (
        "Line {line}: write “key threshold [points] [name]”.",
        "Riga {line}: scrivi “chiave soglia [punti] [nome]”.",
    ),
    # console: leaderboards
    "boards.title": ("Leaderboards", "Classifiche"),
    "boards.lead": (
        "Current standings and the archives of closed periods.",
        "Classifiche attuali e archivio dei periodi chiusi.",
    ),
    "boards.edit_in_program": ("Edit in the program", "Modifica nel programma"),
    "boards.visibility.public": ("Public", "Pubblica"),
    "boards.visibility.members": ("Members only", "Solo membri"),
    "boards.ties.competition": ("ties share a rank", "pari merito con stessa posizione"),
    "boards.ties.dense": ("dense ranks", "posizioni consecutive"),
    "boards.ties.first_to_reach": ("first to reach ranks higher", "vince chi arriva prima"),
    "boards.per": ("per {scope}", "per {scope}"),
    "boards.scoped_hint": (
        "One board per value: open it to pick one.",
        "Una classifica per valore: aprila per sceglierne uno.",
    ),
    "boards.pick_scope": (
        "This board is kept per {scope}: enter a value.",
        "Questa classifica è divisa per {scope}: inserisci un valore.",
    ),
    "boards.show": ("Show", "Mostra"),
    "boards.standings": ("Standings", "Classifica"),
    "boards.members.one": ("{count} member", "{count} membro"),
    "boards.members.other": ("{count} members", "{count} membri"),
    "boards.archives": ("Periods", "Periodi"),
    "boards.current": ("Current period", "Periodo in corso"),
    "boards.archived": ("Archived", "Archiviato"),
    "boards.no_archives": ("No closed periods yet.", "Ancora nessun periodo chiuso."),
    # console: members
    "members.title": ("Members", "Membri"),
    "members.lead": (
        "Look a member up to see their progress, fix their points or grant a badge.",
        "Cerca un membro per vederne i progressi, rettificare i punti o assegnare un badge.",
    ),
    "members.search": ("Search", "Cerca"),
    "members.search_placeholder": ("External id or name", "Id esterno o nome"),
    "members.results": ("Results for “{query}”", "Risultati per “{query}”"),
    "members.recent": ("Recently active", "Attivi di recente"),
    "members.none": ("No members found.", "Nessun membro trovato."),
    "members.name": ("Name", "Nome"),
    "members.external_id": ("External id", "Id esterno"),
    "members.locale": ("Language", "Lingua"),
    "members.balance": ("Points", "Punti"),
    "members.updated": ("Last change", "Ultima modifica"),
    "member.since": ("member since {date}", "membro dal {date}"),
    "member.profile": ("Profile", "Profilo"),
    "member.portal_link": ("See their portal", "Vedi il suo portale"),
    "member.portal_link_ready": (
        "A portal link valid for {minutes} minutes is ready.",
        "È pronto un link al portale valido {minutes} minuti.",
    ),
    "member.open_portal": ("Open the member's portal", "Apri il portale del membro"),
    "member.adjust": ("Adjust points", "Rettifica punti"),
    "member.points": ("Points", "Punti"),
    "member.points_hint": ("Negative to remove points.", "Negativo per togliere punti."),
    "member.reason": ("Reason", "Motivo"),
    "member.adjust_submit": ("Post adjustment", "Registra rettifica"),
    "member.badges": ("Badges", "Badge"),
    "member.earned": ("Earned", "Ottenuto"),
    "member.revoke": ("Revoke", "Revoca"),
    "member.revoke_named": ("Revoke {badge}", "Revoca {badge}"),
    "member.revoked_by": ("Revoked by {email}", "Revocato da {email}"),
    "member.no_badges": ("No badges yet.", "Ancora nessun badge."),
    "member.grant": ("Grant a badge", "Assegna un badge"),
    "member.grant_submit": ("Grant", "Assegna"),
    "member.challenges": ("Challenges", "Sfide"),
    "member.progress": ("Progress", "Avanzamento"),
    "member.no_challenges": ("No challenges for this member.", "Nessuna sfida per questo membro."),
    "member.history": ("Points history", "Storico punti"),
    "member.error.points": ("Enter a whole number other than zero.", "Inserisci un numero intero diverso da zero."),
    "member.error.reason": ("Give a reason (up to 500 characters).", "Indica un motivo (fino a 500 caratteri)."),
    "member.error.badge": ("Choose a badge.", "Scegli un badge."),
    # console: keys
    "keys.title": ("API keys", "Chiavi API"),
    "keys.lead": (
        "Secret keys send events from your servers; publishable keys only read what widgets show.",
        "Le chiavi segrete inviano eventi dai tuoi server; quelle pubblicabili leggono solo ciò che mostrano i widget.",
    ),
    "keys.list": ("Keys", "Chiavi"),
    "keys.prefix": ("Key", "Chiave"),
    "keys.kind": ("Kind", "Tipo"),
    "keys.label": ("Label", "Etichetta"),
    "keys.label_hint": ("Where it is used, e.g. “POS Milano”.", "Dove si usa, es. “POS Milano”."),
    "keys.state": ("State", "Stato"),
    "keys.actions": ("Actions", "Azioni"),
    "keys.secret": ("secret", "segreta"),
    "keys.publishable": ("publishable", "pubblicabile"),
    "keys.secret_long": (
        "Secret (sk_): events and admin, for servers only",
        "Segreta (sk_): eventi e amministrazione, solo per server",
    ),
    "keys.publishable_long": (
        "Publishable (pk_): widgets and public boards",
        "Pubblicabile (pk_): widget e classifiche pubbliche",
    ),
    "keys.live": ("live", "attiva"),
    "keys.revoked": ("revoked", "revocata"),
    "keys.created": ("created {date}", "creata il {date}"),
    "keys.revoke": ("Revoke", "Revoca"),
    "keys.revoke_named": ("Revoke key {prefix}", "Revoca la chiave {prefix}"),
    "keys.new": ("Issue a key", "Emetti una chiave"),
    "keys.issue": ("Issue key", "Emetti chiave"),
    "keys.issued": ("Your new key", "La tua nuova chiave"),
    "keys.issued_once": (
        "Copy it now: it is stored hashed and will not be shown again.",
        "Copiala ora: è salvata cifrata e non verrà più mostrata.",
    ),
    "keys.kinds_help": (
        "Never put a secret key in a web page or app: widgets refuse it.",
        "Non inserire mai una chiave segreta in una pagina web o in un'app: i widget la rifiutano.",
    ),
    "keys.error.kind": ("Choose secret or publishable.", "Scegli segreta o pubblicabile."),
    # console: webhooks
    "webhooks.title": ("Webhooks", "Webhook"),
    "webhooks.lead": (
        "Questline calls your endpoints when members complete challenges or earn badges (signed with Standard Webhooks).",
        "Questline chiama i tuoi endpoint quando i membri completano sfide o ottengono badge (firmati con Standard Webhooks).",
    ),
    "webhooks.list": ("Endpoints", "Endpoint"),
    "webhooks.url": ("URL", "URL"),
    "webhooks.url_hint": ("HTTPS in production.", "HTTPS in produzione."),
    "webhooks.topics": ("Topics", "Argomenti"),
    "webhooks.topics_hint": ("None checked: every topic.", "Nessuna selezione: tutti gli argomenti."),
    "webhooks.all_topics": ("all topics", "tutti gli argomenti"),
    "webhooks.active": ("active", "attivo"),
    "webhooks.disabled": ("disabled", "disattivato"),
    "webhooks.delete": ("Delete", "Elimina"),
    "webhooks.delete_named": ("Delete endpoint {url}", "Elimina l'endpoint {url}"),
    "webhooks.none": ("No endpoints yet.", "Ancora nessun endpoint."),
    "webhooks.new": ("Add an endpoint", "Aggiungi un endpoint"),
    "webhooks.add": ("Add endpoint", "Aggiungi endpoint"),
    "webhooks.created": ("Endpoint added", "Endpoint aggiunto"),
    "webhooks.secret_once": (
        "Signing secret for {url}. Copy it now: it is not shown again.",
        "Segreto di firma per {url}. Copialo ora: non verrà più mostrato.",
    ),
    "webhooks.error.url": ("Enter a full http(s):// URL.", "Inserisci un URL completo http(s)://."),
    "webhooks.deliveries": ("Recent deliveries", "Consegne recenti"),
    "webhooks.topic": ("Topic", "Argomento"),
    "webhooks.message": ("Message", "Messaggio"),
    "webhooks.when": ("When", "Quando"),
    "webhooks.attempts": ("Attempts", "Tentativi"),
    "webhooks.delivered": ("delivered", "consegnato"),
    "webhooks.failing": ("retrying", "nuovo tentativo"),
    "webhooks.pending": ("pending", "in attesa"),
    "webhooks.no_deliveries": ("No messages yet.", "Ancora nessun messaggio."),
    # console: widgets
    "widgets.title": ("Widgets", "Widget"),
    "widgets.lead": (
        "Embed a live leaderboard or a member's badge shelf on your site or app.",
        "Inserisci una classifica live o la bacheca badge di un membro nel tuo sito o app.",
    ),
    "widgets.where": ("Where they may appear", "Dove possono comparire"),
    "widgets.origins": ("Allowed sites", "Siti consentiti"),
    "widgets.origins_hint": (
        "One origin per line, e.g. https://shop.example.com or https://*.example.com. Other sites cannot frame or read your widgets.",
        "Un'origine per riga, es. https://shop.example.com o https://*.example.com. Gli altri siti non possono incorporare né leggere i tuoi widget.",
    ),
    "widgets.no_origins": (
        "No site is allowed yet: widgets show only in this console.",
        "Nessun sito è ancora consentito: i widget si vedono solo in questa console.",
    ),
    "widgets.accent": ("Accent colour", "Colore principale"),
    "widgets.accent_hint": (
        "Used by the portal and the widgets (a widget's data-accent overrides it).",
        "Usato dal portale e dai widget (il data-accent di un widget lo sostituisce).",
    ),
    "widgets.error.accent": ("Choose a colour like #5b3df5.", "Scegli un colore come #5b3df5."),
    "widgets.embed": ("Embed code", "Codice da incorporare"),
    "widgets.script_tag": (
        "Script tag (creates the frame and sizes it):",
        "Tag script (crea il riquadro e lo dimensiona):",
    ),
    "widgets.iframe": ("Or a plain iframe:", "Oppure un semplice iframe:"),
    "widgets.copy": ("Copy", "Copia"),
    "widgets.copied": ("Copied", "Copiato"),
    "widgets.member_hint": (
        'Add data-member with a token from POST /v1/members/{{id}}/widget-token to highlight the viewer; data-widget="badges" shows their badge shelf.',
        'Aggiungi data-member con un token da POST /v1/members/{{id}}/widget-token per evidenziare chi guarda; data-widget="badges" mostra la sua bacheca badge.',
    ),
    "widgets.params": (
        "Options: data-theme light | dark | auto, data-accent #RRGGBB, data-font system | serif | rounded | mono, data-rows 1–50, data-lang it | en. Use your full publishable key.",
        "Opzioni: data-theme light | dark | auto, data-accent #RRGGBB, data-font system | serif | rounded | mono, data-rows 1–50, data-lang it | en. Usa la chiave pubblicabile completa.",
    ),
    "widgets.no_public_boards": ("No public leaderboards yet.", "Ancora nessuna classifica pubblica."),
    "widgets.preview": ("Preview", "Anteprima"),
    "widgets.preview_of": ("Preview of {board}", "Anteprima di {board}"),
}

CATALOG: dict[str, dict[str, str]] = {
    "en": {key: texts[0] for key, texts in _MESSAGES.items()},
    "it": {key: texts[1] for key, texts in _MESSAGES.items()},
}
