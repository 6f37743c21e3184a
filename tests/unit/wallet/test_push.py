"""The APNs pusher: the brand's certificate loads into aioapns's HTTP/2 client, the payload is empty, the topic is
the pass type, tokens APNs calls unregistered come back, and the key never stays on disk."""

import os
import tempfile

import aioapns
from aioapns.common import NotificationResult

from tests.wallet_chain import PASS_TYPE, chain
from wallet.push import ApnsPusher, PushCredentials


async def test_apns_pusher_sends_empty_pushes_and_reports_gone_tokens(monkeypatch):
    sent = []

    async def send(self, request):
        sent.append((self.pool.apns_topic, request.device_token, request.message))
        status = "410" if request.device_token == "gone" else "200"
        return NotificationResult(notification_id="n", status=status, description=None)

    monkeypatch.setattr(aioapns.APNs, "send_notification", send)
    before = set(os.listdir(tempfile.gettempdir()))
    c = chain()
    credentials = PushCredentials(certificate_pem=c.cert_pem, private_key_pem=c.key_pem, topic=PASS_TYPE)
    gone = await ApnsPusher().push(credentials, ["a" * 64, "gone"])
    assert gone == ["gone"]
    assert sent == [(PASS_TYPE, "a" * 64, {}), (PASS_TYPE, "gone", {})]
    assert {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.endswith(".pem")} == set()
    assert await ApnsPusher().push(credentials, []) == []
