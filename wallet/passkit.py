"""Apple's PassKit web service (protocol ``v1``): device registrations, updated serials, the latest pass.

Devices authenticate pass-specific calls with ``Authorization: ApplePass <authenticationToken>``; a wrong or
missing token answers 401 whether or not the serial exists. The list of updated serials is computed from the
members' current state, so it is right even when no push went out (the refresh job's pushes only wake devices).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from engine.errors import NotFound, QuestlineError, ValidationError
from engine.ids import MemberId
from wallet import repository as repo
from wallet.models import SERIAL
from wallet.push import PushCredentials
from wallet.service import CardReader, IssuedPass, Wallets, credentials_error, load_brand

log = logging.getLogger("questline.wallet")
#: Longest device library identifier and push token accepted (Apple's are 32 and 64 hex characters).
_MAX_ID = 128


@dataclass(frozen=True, slots=True)
class PassKit:
    """The web service Wallet on a device talks to."""

    wallets: Wallets
    reader: CardReader

    def _token_of(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "ApplePass" or not token.strip():
            raise credentials_error()
        return token.strip()

    async def _authorised(self, pass_type: str, serial: str, authorization: str | None) -> repo.PassRef:
        token = self._token_of(authorization)
        if not SERIAL.match(serial) or not hmac.compare_digest(token, self.wallets.authentication_token(serial)):
            raise credentials_error()
        async with self.wallets.db.read() as session:
            ref = await repo.pass_by_serial(session, serial)
        if ref is None:
            raise credentials_error()
        settings, _, _ = await self.wallets.apple_config(ref.brand_id)
        if settings.pass_type_identifier != pass_type:
            raise NotFound("no such pass type")
        return ref

    async def register(
        self, *, device: str, pass_type: str, serial: str, authorization: str | None, push_token: str
    ) -> bool:
        """Register the device for the pass's updates; whether it is new (201) or was known (200)."""
        _check_id(device, "deviceLibraryIdentifier")
        ref = await self._authorised(pass_type, serial, authorization)
        if not push_token or len(push_token) > 256:
            raise ValidationError("pushToken is required (at most 256 characters)", field="$.pushToken")
        async with self.wallets.db.write() as session:
            return await repo.register(
                session,
                device=device,
                pass_type=pass_type,
                ref=ref,
                push_token=push_token,
                now=self.wallets.clock.now(),
            )

    async def unregister(self, *, device: str, pass_type: str, serial: str, authorization: str | None) -> None:
        """Stop the device's updates for the pass (answered 200 even when it was not registered)."""
        _check_id(device, "deviceLibraryIdentifier")
        ref = await self._authorised(pass_type, serial, authorization)
        async with self.wallets.db.write() as session:
            await repo.unregister(session, device=device, ref=ref)

    async def refresh(self, ref: repo.PassRef) -> repo.PassRef | None:
        """Compare the member's current card with what the pass shows; the pass as stored afterwards."""
        brand = await load_brand(self.wallets.db, ref.brand_id)
        state = await self.reader(brand, MemberId(ref.member_id))
        if state is None:
            return None
        now_s = int(self.wallets.clock.now().timestamp())
        async with self.wallets.db.write() as session:
            return await repo.record_fingerprint(session, ref, fingerprint=state.fingerprint(), now_s=now_s)

    async def updated(self, *, device: str, pass_type: str, since: str | None) -> tuple[list[str], str] | None:
        """Serial numbers of the device's passes changed after the tag ``since`` and the new tag; ``None``: none."""
        _check_id(device, "deviceLibraryIdentifier")
        after = -1
        if since:
            if not since.isdigit() or len(since) > 15:
                raise ValidationError("passesUpdatedSince is a tag this server answered", field="passesUpdatedSince")
            after = int(since)
        async with self.wallets.db.read() as session:
            passes = await repo.device_passes(session, device=device, pass_type=pass_type)
        current = [r for r in [await self.refresh(p) for p in passes] if r is not None]
        changed = [r for r in current if r.updated_s > after]
        if not changed:
            return None
        return [r.serial_number for r in changed], str(max(r.updated_s for r in current))

    async def latest(self, *, pass_type: str, serial: str, authorization: str | None) -> IssuedPass:
        """The pass as it is now (its ``updated_s`` is the ``Last-Modified``)."""
        ref = await self._authorised(pass_type, serial, authorization)
        brand = await load_brand(self.wallets.db, ref.brand_id)
        state = await self.reader(brand, MemberId(ref.member_id))
        if state is None:
            raise NotFound("the pass's member no longer exists")
        return await self.wallets.apple_pass(brand, MemberId(ref.member_id), state)

    async def refresh_all(self, *, page: int = 500) -> int:
        """Refresh every pass some device registered for and push the devices of changed ones; pushes sent."""
        pushed = 0
        after = 0
        while True:
            async with self.wallets.db.read() as session:
                passes = await repo.registered_passes(session, after_id=after, limit=page)
            if not passes:
                return pushed
            after = passes[-1].id
            for ref in passes:
                try:
                    now = await self.refresh(ref)
                    if now is not None and now.updated_s != ref.updated_s:
                        pushed += await self._push(now)
                except QuestlineError as exc:  # e.g. the brand removed its settings: the other passes go on
                    log.warning("wallet pass %s not refreshed: %s", ref.serial_number, exc.detail)

    async def _push(self, ref: repo.PassRef) -> int:
        async with self.wallets.db.read() as session:
            tokens = await repo.push_tokens(session, pass_id=ref.id)
        if not tokens:
            return 0
        settings, _, key = await self.wallets.apple_config(ref.brand_id)
        credentials = PushCredentials(
            certificate_pem=settings.certificate_pem,
            private_key_pem=key,
            topic=settings.pass_type_identifier,
            sandbox=settings.apns_sandbox,
        )
        gone = await self.wallets.pusher.push(credentials, [t for _, t in tokens])
        if gone:
            async with self.wallets.db.write() as session:
                await repo.forget_tokens(session, pass_id=ref.id, tokens=gone)
        return len(tokens)


def _check_id(value: str, name: str) -> None:
    if not value or len(value) > _MAX_ID or not value.isprintable():
        raise ValidationError(f"{name} is not a device identifier", field=name)
