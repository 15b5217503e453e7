"""Kite's errors as the REST API reports them: an `error_type` naming the client's exception class
and an HTTP status (see kiteconnect.exceptions)."""

from __future__ import annotations


class KiteApiError(Exception):
    """An error answered as {"status": "error", "message", "error_type", "data": null}."""

    error_type = "GeneralException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(KiteApiError):
    error_type = "InputException"
    status = 400


class TokenError(KiteApiError):
    error_type = "TokenException"
    status = 403


class PermissionDenied(KiteApiError):
    error_type = "PermissionException"
    status = 403


class OrderError(KiteApiError):
    error_type = "OrderException"
    status = 500


class RateLimited(KiteApiError):
    """HTTP 429; the client raises NetworkException."""

    error_type = "NetworkException"
    status = 429


class NotFound(KiteApiError):
    error_type = "GeneralException"
    status = 404
