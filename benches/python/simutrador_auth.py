"""Shared by the benchmark scripts here: a token for an API key."""
import json
import urllib.request


def token(base: str, key: str, timeout: float = 10) -> str:
    """An access token from `POST {base}/auth/token` for the API key `key`."""
    req = urllib.request.Request(f"{base}/auth/token", data=b"{}", method="POST",
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as res:
        return json.load(res)["access_token"]
