"""A program in a real pseudo-terminal: keys in, timed output bytes out, SIGKILL on demand.

Used by the crash test and by bench/annotate.py. It answers Textual's query for synchronized
output (mode 2026), so every frame arrives between SYNC_START and SYNC_END and a test can
tell when a frame is complete. Textual draws on stderr; both go to the pty here.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

SYNC_START = b"\x1b[?2026h"
SYNC_END = b"\x1b[?2026l"
SYNC_QUERY = b"\x1b[?2026$p"
SYNC_REPLY = b"\x1b[?2026;2$y"  # supported, currently reset
# CSI, OSC, charset selection, and the string sequences (DCS, SOS, PM, APC: a terminal probe).
CSI_SEQUENCE = re.compile(
    rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-B]"
    rb"|\x1b[P_^X][^\x1b]*\x1b\\"
)


@dataclass(frozen=True)
class Frame:
    """One complete frame: where it ends in the output and when its last byte arrived."""

    start: int
    end: int
    arrived: float


class PtyTerminal:
    """Runs `argv` on a pty of `columns` x `rows`; a reader thread timestamps the output."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        columns: int = 160,
        rows: int = 50,
        cell_pixels: tuple[int, int] = (0, 0),
    ) -> None:
        self.master, slave = os.openpty()
        # The window in pixels too, as a graphics terminal reports it (0: unknown).
        size = struct.pack("HHHH", rows, columns, columns * cell_pixels[0], rows * cell_pixels[1])
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            # COLUMNS and LINES (left by other tests in this process) would override the
            # window size for the app: shutil.get_terminal_size reads them first.
            env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")},
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.output = bytearray()
        self.arrivals: list[tuple[int, float]] = []  # (output length after a read, time)
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:
                chunk = b""
            now = time.perf_counter()
            with self._changed:
                if not chunk:
                    self.arrivals.append((-1, now))
                    self._changed.notify_all()
                    return
                self.output += chunk
                self.arrivals.append((len(self.output), now))
                if SYNC_QUERY in self.output[-len(chunk) - len(SYNC_QUERY) :]:
                    os.write(self.master, SYNC_REPLY)
                self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return bool(self.arrivals) and self.arrivals[-1][0] == -1

    def send(self, data: bytes) -> tuple[int, float]:
        """Write keys to the program; returns the output length and the time at that moment."""
        with self._changed:
            offset = len(self.output)
        sent = time.perf_counter()
        os.write(self.master, data)
        return offset, sent

    def wait_for(
        self, pattern: bytes | re.Pattern[bytes], start: int = 0, timeout: float = 10.0
    ) -> re.Match[bytes]:
        """Wait until the output from `start` on (escape sequences removed) matches `pattern`."""
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern
        deadline = time.perf_counter() + timeout
        with self._changed:
            while True:
                found = regex.search(visible_text(bytes(self.output[start:])))
                if found:
                    return found
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.closed:
                    tail = visible_text(bytes(self.output[-2000:]))
                    raise TimeoutError(f"{regex.pattern!r} not seen; screen tail: {tail[-600:]!r}")
                self._changed.wait(remaining)

    def frame_with(
        self, pattern: bytes | re.Pattern[bytes], start: int = 0, timeout: float = 10.0
    ) -> tuple[Frame, re.Match[bytes]]:
        """The first complete frame after `start` whose text matches `pattern`."""
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern
        deadline = time.perf_counter() + timeout
        position = start
        with self._changed:
            while True:
                begin = self.output.find(SYNC_START, position)
                end = -1 if begin < 0 else self.output.find(SYNC_END, begin)
                if end >= 0:
                    end += len(SYNC_END)
                    found = regex.search(visible_text(bytes(self.output[begin:end])))
                    if found:
                        return Frame(begin, end, self.arrival_of(end)), found
                    position = end
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(f"no frame with {regex.pattern!r}")
                self._changed.wait(remaining)

    def arrival_of(self, offset: int) -> float:
        for length, arrived in self.arrivals:
            if length >= offset:
                return arrived
        return time.perf_counter()

    def quiet(self, seconds: float, timeout: float = 10.0) -> int:
        """Wait until no output came for `seconds`; returns the output length then."""
        deadline = time.perf_counter() + timeout
        with self._changed:
            while time.perf_counter() < deadline:
                size = len(self.output)
                self._changed.wait(seconds)
                if len(self.output) == size:
                    return size
        return len(self.output)

    def kill(self) -> None:
        """SIGKILL, as a dropped machine or an OOM killer would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def hang_up(self) -> None:
        """Close the terminal, as a closed window or a dropped SSH session does: reads and
        writes on it fail from then on, and the kernel sends SIGHUP to the terminal's
        processes (sent here: the pty is not the program's controlling terminal)."""
        os.close(self.master)
        self.master = -1
        os.killpg(self.process.pid, signal.SIGHUP)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._reader.join(timeout=5)
        if self.master >= 0:
            os.close(self.master)


def visible_text(data: bytes) -> bytes:
    """The bytes with escape sequences removed: roughly what a person reads on screen."""
    return CSI_SEQUENCE.sub(b"", data)


CURSOR_POSITION = re.compile(rb"\x1b\[(\d+);(\d+)H")
ANY_SEQUENCE = re.compile(
    rb"\x1b\[(\d+);(\d+)H|\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|\x1bP.*?\x1b\\|\x1b_.*?\x1b\\|\x1b[()][0-9A-B]|\x1b[78]|[\r\n]",
    re.DOTALL,
)


def screen_lines(data: bytes, columns: int, rows: int) -> list[str]:
    """The text a terminal would show after `data`, for what Textual writes.

    Enough of a terminal for Textual's output: it positions the cursor absolutely before
    each piece of a line, so only cursor positions and printed characters matter.
    """
    screen = [[" "] * columns for _ in range(rows)]
    x = y = 0
    position = 0
    text = data
    for match in ANY_SEQUENCE.finditer(text):
        x, y = _print(screen, text[position : match.start()], x, y)
        if match.group(1):
            y, x = int(match.group(1)) - 1, int(match.group(2)) - 1
        elif match.group(0) == b"\r":
            x = 0
        elif match.group(0) == b"\n":
            y += 1
        position = match.end()
    _print(screen, text[position:], x, y)
    return ["".join(row) for row in screen]


def _print(screen: list[list[str]], chunk: bytes, x: int, y: int) -> tuple[int, int]:
    for character in chunk.decode("utf-8", errors="replace"):
        if 0 <= y < len(screen) and 0 <= x < len(screen[0]):
            screen[y][x] = character
        x += 1
    return x, y
