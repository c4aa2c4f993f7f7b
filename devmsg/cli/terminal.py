"""The one place where text reaches the operator's terminal. Bodies, names, subjects,
context, metadata and SMTP replies come from outside: a control character in them must
never drive the terminal (ESC ] 0 ; retitles the window, ESC [ 2 J clears it, the one-byte
CSI U+009B does the same on many terminals). Every console the CLI prints through renders
C0 controls (but newline and tab), DEL and C1 visibly instead (rich's Text already drops
BEL, BS, VT, FF and CR). `--json` output does not come
through here: it stays exact (see `views.to_json`)."""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment

from devmsg.cli.controls import CONTROL, visible

__all__ = ["CONTROL", "SafeConsole", "visible"]


class SafeConsole(Console):
    """A rich Console whose content cannot carry control sequences. Rich's own styling is
    added after rendering, from each segment's style, so only content is changed here."""

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterator[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and CONTROL.search(segment.text):
                yield Segment(visible(segment.text), segment.style)
            else:
                yield segment
