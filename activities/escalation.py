"""Typed failures for activities: an error that retrying cannot fix is raised as a
non-retryable ApplicationError of a type in `tether.errors.ESCALATE`, so the workflow escalates
it at once instead of retrying it (see workflows/retry.py). A PostgreSQL outage is retried, as
one line (`StoreUnavailable`), not a chain of connection tracebacks."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from tether import errors
from tether.store.connection import store_outage

P = ParamSpec("P")
R = TypeVar("R")


class InvalidInput(Exception):
    """Raised by an activity whose input cannot be processed as given."""


def escalating(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Permission and invalid-input errors become final, typed failures."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except PermissionError as exc:
            raise ApplicationError(
                f"permission denied: {exc}", type=errors.PERMISSION_DENIED, non_retryable=True
            ) from exc
        except (InvalidInput, ValidationError) as exc:
            raise ApplicationError(
                f"invalid input: {exc}", type=errors.INVALID_INPUT, non_retryable=True
            ) from exc
        except Exception as exc:
            if not store_outage(exc):
                raise
            # One line, no chained traceback: what the founder sees while the outage lasts.
            raise ApplicationError(
                f"cannot reach PostgreSQL ({type(exc).__name__}: {str(exc)[:200]})",
                type=errors.STORE_UNAVAILABLE,
            ) from None

    return wrapper
