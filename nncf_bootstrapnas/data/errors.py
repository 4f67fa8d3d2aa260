"""The data package's errors: one clear message saying what is wrong, where, and what is allowed."""

from __future__ import annotations


class DataError(ValueError):
    """Bad data or a bad data argument: says what, where, and what is allowed."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data set that is not where it was looked for; the message lists the places and how to install it."""
