"""Credential redaction for every log line: query parameters, headers, bearer tokens, JWTs and
data-source push tokens (`wbsrc_...`) never reach a log handler in clear.

One filter (`RedactingFilter`) does it. `install_redaction` runs it as each record is made (the
log record factory, so handlers added later, such as pytest's, see clean records too) and puts
it on the root handlers and on uvicorn's own loggers, whose records may go to handlers of
their own when uvicorn runs with its default log config.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"

# Query/form parameters whose value is a credential (matched case-insensitively, exactly).
SECRET_PARAMS = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "jwt",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "signature",
    "sig",
    "session",
    "sessionid",
    "code",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
)

# Headers whose value is a credential.
SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-amz-security-token",
    "svix-signature",
    "webhook-signature",
    "x-hub-signature",
    "x-hub-signature-256",
)

_PARAM_RE = re.compile(
    r"(?i)(?P<lead>[?&;]|%3F|%26)(?P<name>"
    + "|".join(re.escape(p) for p in SECRET_PARAMS)
    + r")(?P<eq>=|%3D)(?P<value>[^&\s\"'#<>;]*)"
)
# A header as HTTP text ("Authorization: Bearer x"), a dict repr ("'cookie': 'a=b'") or an ASGI
# header tuple ("(b'authorization', b'Bearer x')"): the value runs to its closing quote, or to
# the end of the line when unquoted.
_HEADER_RE = re.compile(
    r"(?i)(?P<name>\b(?:"
    + "|".join(re.escape(h) for h in SECRET_HEADERS)
    + r"))(?P<sep>['\"]?\s*[:=]\s*(?-i:b)?|['\"]\s*,\s*(?-i:b)?)"
    r"(?:(?P<quote>['\"])(?P<qvalue>[^'\"\r\n]*)(?P=quote)|(?P<value>[^\r\n]+))"
)
_BEARER_RE = re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Data-source push tokens (apps/osm) anywhere in a message, whatever surrounds them.
_SOURCE_TOKEN_RE = re.compile(r"wbsrc_[^\s\"'&,;)}\]<>]*")


def _header(match: re.Match[str]) -> str:
    head = match["name"] + match["sep"]
    if match["quote"]:
        return f"{head}{match['quote']}{REDACTED}{match['quote']}"
    return head + REDACTED


def redact(text: str) -> str:
    """`text` with every credential it carries replaced by `[REDACTED]`."""
    if not text:
        return text
    text = _SOURCE_TOKEN_RE.sub("wbsrc_" + REDACTED, text)
    text = _JWT_RE.sub(REDACTED, text)
    text = _PARAM_RE.sub(lambda m: f"{m['lead']}{m['name']}{m['eq']}{REDACTED}", text)
    text = _HEADER_RE.sub(_header, text)
    return _BEARER_RE.sub(lambda m: f"{m['scheme']} {REDACTED}", text)


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, (int, float, bool)) or arg is None:
        return arg
    if isinstance(arg, bytes):
        arg = arg.decode("latin-1")
    text = str(arg)
    clean = redact(text)
    # Unchanged arguments keep their type, so "%d"-style formats and formatters that unpack
    # `record.args` (uvicorn's access formatter) still work.
    return arg if clean == text else clean


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so that no handler or formatter sees a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_wb_redacted", False):
            return True
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        else:
            record.msg = redact(str(record.msg))
        if isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._wb_redacted = True
        return True


# Loggers that may have handlers of their own (propagate=False under uvicorn's default config).
_OWN_HANDLER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.access")


def _add_once(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())


_FILTER = RedactingFilter()


def _redacting_factory(base: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = base(*args, **kwargs)
        _FILTER.filter(record)
        return record

    make._wb_redacting = True  # type: ignore[attr-defined]
    return make


def install_redaction() -> None:
    """Redact every record as it is made, and filter the root and uvicorn handlers (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_wb_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(factory))
    for handler in logging.getLogger().handlers:
        _add_once(handler)
    for name in _OWN_HANDLER_LOGGERS:
        logger = logging.getLogger(name)
        _add_once(logger)
        for handler in logger.handlers:
            _add_once(handler)
