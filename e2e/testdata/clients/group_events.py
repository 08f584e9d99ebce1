"""Shared plumbing of the long-running group consumers (group_consumer_*.py).

A group consumer reports what happens to it as JSON lines on stdout, one
event per line, flushed at once so the Go test sees it immediately:

    {"event": "subscribed"}
    {"event": "assigned", "partitions": [0, 1]}   partitions added
    {"event": "revoked", "partitions": [0, 1]}    partitions taken away
    {"event": "lost", "partitions": [0, 1]}       partitions lost (no commit possible)
    {"event": "record", "partition": 0, "offset": 5, "value": "17"}
    {"event": "commit_error", "partition": 0, "offset": 5, "error": "..."}
    {"event": "paused"} / {"event": "resumed"}
    {"event": "closed"}                           close() returned; the script exits 0

A "record" line is printed once the record is processed, right before its
offset is committed synchronously; a failed commit is followed by a
"commit_error" line for the same record.

The test steers the consumer through stdin, one command per line:

    pause    stop polling (the client keeps heartbeating in the background);
             nothing is consumed until "resume"
    resume   poll again
    close    close the consumer cleanly (commit nothing more, leave the group
             unless static) and exit

SIGTERM and the end of stdin mean "close" too.
"""

import json
import queue
import signal
import sys
import threading


def emit(event, **fields):
    """Prints one event line for the Go test."""
    fields["event"] = event
    print(json.dumps(fields, sort_keys=True), flush=True)


def log(message):
    """Writes a diagnostic line to stderr, which the Go test shows on failure."""
    print(message, file=sys.stderr, flush=True)


class Control:
    """The commands of stdin and SIGTERM, applied by the consumer's loop."""

    def __init__(self):
        self._commands = queue.Queue()
        self._sigterm = False
        self.paused = False
        self.closing = False
        # The handler only sets a flag: it runs between two bytecodes of the
        # main thread, which may hold the queue's lock at that moment.
        signal.signal(signal.SIGTERM, self._on_sigterm)
        threading.Thread(target=self._read_stdin, daemon=True).start()

    def _on_sigterm(self, signum, frame):
        self._sigterm = True

    def _read_stdin(self):
        for line in sys.stdin:
            cmd = line.strip()
            if cmd:
                self._commands.put(cmd)
        self._commands.put("close")  # stdin closed: the test has gone away

    def step(self):
        """Applies the pending commands; returns False once asked to close."""
        if self._sigterm:
            self.closing = True
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                break
            if cmd == "pause":
                self.paused = True
                emit("paused")
            elif cmd == "resume":
                self.paused = False
                emit("resumed")
            elif cmd == "close":
                self.closing = True
            else:
                log("unknown command %r" % cmd)
        return not self.closing
