"""The one way to show progress: rich bars with the same columns everywhere, or no-op objects when disabled.

    with progress_bar("search NSGA2", total=200, enabled=show) as bar:   # one bar
        bar.advance(info="HV 0.41")
    with progress(enabled=show) as bars:                                   # several bars in one display
        epochs = bars.add("epochs", total=10)
        batches = bars.add("epoch 1/10", total=50)

A bar: ``advance(n=1, info=None)``, ``update(completed=, total=, description=, info=)``, ``remove()``,
``log(message)`` (printed above the live display) and ``suspended()`` (stops the display while another rich
display, e.g. NNCF's, runs). Callers decide ``enabled`` (e.g. rank 0 only, off inside worker processes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class Bar:
    """One task of a live rich display."""

    def __init__(self, bars: Bars, task_id: Any) -> None:
        self._bars, self._id = bars, task_id

    def advance(self, n: float = 1, info: str | None = None) -> None:
        fields = {} if info is None else {"info": info}
        self._bars.rich.update(self._id, advance=n, **fields)

    def update(self, **changes: Any) -> None:
        """``completed``, ``total``, ``description`` and/or ``info``."""
        self._bars.rich.update(self._id, **changes)

    def remove(self) -> None:
        self._bars.rich.remove_task(self._id)

    def log(self, message: str) -> None:
        self._bars.log(message)

    def suspended(self) -> contextlib.AbstractContextManager[None]:
        return self._bars.suspended()


class Bars:
    """A live rich display holding one or more bars."""

    def __init__(self, rich: Any) -> None:
        self.rich = rich

    def add(self, description: str, total: float | None = None, completed: float = 0, info: str = "") -> Bar:
        return Bar(self, self.rich.add_task(description, total=total, completed=completed, info=info))

    def log(self, message: str) -> None:
        self.rich.console.print(message)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        self.rich.stop()
        try:
            yield
        finally:
            self.rich.start()


class _NoBar:
    """What a disabled display hands out: every call does nothing."""

    def add(self, *args: Any, **kwargs: Any) -> _NoBar:
        return self

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update(self, **changes: Any) -> None:
        pass

    def remove(self) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        yield


NO_PROGRESS = _NoBar()


@contextlib.contextmanager
def progress(
    enabled: bool = True, *, transient: bool = False, stderr: bool = False, counts: bool = True
) -> Iterator[Bars | _NoBar]:
    """A live display (or the no-op ``NO_PROGRESS``). ``counts``: "done/total" (False: percentage, for time bars);
    ``transient``: erase the display when done; ``stderr``: draw on stderr."""
    if not enabled:
        yield NO_PROGRESS
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    amount = MofNCompleteColumn() if counts else TextColumn("{task.percentage:>3.0f}%")
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), amount, TimeElapsedColumn())
    console = Console(stderr=True) if stderr else None
    with Progress(*columns, TextColumn("{task.fields[info]}"), console=console, transient=transient) as rich:
        yield Bars(rich)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None, enabled: bool = True, **options: Any) -> Iterator[Bar | _NoBar]:
    """One bar in its own display; ``options`` as for :func:`progress`."""
    with progress(enabled, **options) as bars:
        yield bars.add(description, total=total)


__all__ = ["NO_PROGRESS", "Bar", "Bars", "progress", "progress_bar"]
