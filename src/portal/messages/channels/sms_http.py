"""SMS through an HTTP gateway shaped like the common Chinese providers' APIs (Aliyun SendSms,
Tencent Cloud SendSms): a signed POST with the phone number, the registered signature (签名)
and the text; the answer ``{"Code": "OK", "BizId": "..."}`` or a ``Code`` naming the problem.

The request is JSON::

    POST <PORTAL_SMS_GATEWAY_URL>
    Authorization: HMAC-SHA256 AccessKeyId=<key>, Timestamp=<unix>, Nonce=<hex>, Signature=<b64>
    {"PhoneNumbers": "+8613800138000", "SignName": "会员中心", "Content": "...", "OutId": "<message id>"}

where Signature is base64(HMAC-SHA256(secret, "<timestamp>\\n<nonce>\\n<body>")). Most
providers' own SDKs differ only in field names; a small proxy or a subclass overriding
``payload()`` and ``outcome()`` fits this adapter to one. Throttling and server errors are
retried; a refused number or signature is not.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request

from . import Outgoing, PermanentFailure, TransientFailure

THROTTLED = {"Throttling", "isv.BUSINESS_LIMIT_CONTROL", "LimitExceeded", "RequestLimitExceeded",
             "InternalError", "ServiceUnavailable"}


class HttpSmsGateway:
    def __init__(self, url: str, *, access_key: str, secret: str, sign_name: str, timeout: float = 15.0):
        self.url, self.access_key, self.secret = url, access_key, secret
        self.sign_name, self.timeout = sign_name, timeout

    def payload(self, msg: Outgoing) -> dict:
        number = msg.address if msg.address.startswith("+") else "+86" + msg.address
        return {"PhoneNumbers": number, "SignName": self.sign_name, "Content": msg.body,
                "OutId": str(msg.message_id)}

    def sign(self, body: bytes, timestamp: str, nonce: str) -> str:
        mac = hmac.new(self.secret.encode(), f"{timestamp}\n{nonce}\n".encode() + body, hashlib.sha256)
        return base64.b64encode(mac.digest()).decode()

    def outcome(self, status: int, answer: dict) -> str:
        code = str(answer.get("Code", ""))
        if code == "OK":
            return str(answer.get("BizId") or answer.get("RequestId") or "")
        if code in THROTTLED or status == 429 or status >= 500:
            raise TransientFailure(f"gateway {status} {code}"[:200])
        raise PermanentFailure(f"gateway {status} {code}"[:200])

    def send(self, msg: Outgoing) -> str:
        body = json.dumps(self.payload(msg), ensure_ascii=False).encode("utf-8")
        ts, nonce = str(int(time.time())), secrets.token_hex(8)
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"HMAC-SHA256 AccessKeyId={self.access_key}, Timestamp={ts}, "
                             f"Nonce={nonce}, Signature={self.sign(body, ts, nonce)}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise TransientFailure(f"gateway unreachable: {type(exc).__name__}") from None
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        return self.outcome(status, answer)
