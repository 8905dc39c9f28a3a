"""The basics: health, sign-in, the customer list, a file page."""
from .browser import post, signed_in


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"


def test_alice_signs_in_and_sees_her_list(client, story):
    signed_in(client, "alice")
    r = client.get("/customers")
    assert r.status_code == 200
    assert "138****" in r.text


def test_alice_opens_her_file(client, story):
    signed_in(client, "alice")
    r = client.get(f"/customers/{story.files['alice'][0]}")
    assert r.status_code == 200, r.text[:2000]
    assert "13800130000" in r.text


def test_charlie_cannot_open_alices_file(client, story):
    signed_in(client, "charlie")
    r = client.get(f"/customers/{story.files['alice'][0]}")
    assert r.status_code == 403
    assert "13800130000" not in r.text
