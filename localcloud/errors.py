"""Errors raised by API handlers, rendered in Alibaba's JSON (RPC) or XML (OSS) shape."""

from __future__ import annotations


class ApiError(Exception):
    """An error an Alibaba Cloud API returns: a code, a message and an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def missing(name: str) -> ApiError:
    return ApiError(f"MissingParameter.{name}" if "." not in name else "MissingParameter",
                    f"The input parameter \"{name}\" that is mandatory for processing this request is not supplied.")


def invalid(name: str, detail: str = "") -> ApiError:
    msg = f"The specified parameter \"{name}\" is not valid."
    if detail:
        msg = f"{msg} {detail}"
    return ApiError(f"InvalidParameter.{name}" if name else "InvalidParameter", msg)


def not_found(code: str, what: str) -> ApiError:
    return ApiError(code, f"The specified {what} does not exist.", 404)
