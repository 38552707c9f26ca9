"""Keep secrets out of logs, errors and archive indexes.

API keys and bearer tokens are masked wherever they appear in text; presigned URLs keep
their path (useful when debugging) but lose their signature and credential parameters.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameters that carry or derive from credentials (S3 SigV4/SigV2, Azure SAS, generic).
_SECRET_PARAMS = {
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "awsaccesskeyid",
    "sig",
    "se",
    "token",
    "access_token",
    "code",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "subscription-key",
}

_HEADER_RE = re.compile(
    r"(?i)\b(x-api-key|authorization|ocp-apim-subscription-key|api[-_]?key|client[-_]secret"
    r"|access[-_]token|refresh[-_]token|session[-_]token)(\"?\s*[:=]\s*\"?)(bearer\s+)?([^\s\"',;&}]+)"
)
_BEARER_RE = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*")
_URL_RE = re.compile(r"https?://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """Return `url` with signature/credential query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.query:
        return url
    query = [
        (k, MASK if k.lower() in _SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/:")))


def redact_text(text: str, *secrets: str) -> str:
    """Mask known secrets, credential-looking headers and URL signatures in free text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    text = _BEARER_RE.sub(f"Bearer {MASK}", text)
    return _HEADER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
