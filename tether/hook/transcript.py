"""Context usage and token spend from a Claude Code transcript (the JSONL at `transcript_path`).

Hooks do not receive context usage; the transcript does. The context in use is the last
main-thread (`isSidechain` not true) assistant message's `input_tokens +
cache_read_input_tokens + cache_creation_input_tokens`; a `compact_boundary` line after it means
the context was compacted. Spend is summed over all assistant messages, subagents' included,
each `message.id` once (streaming and parallel tool calls write several lines sharing one usage).
Calls that write no assistant line (a compaction's summary request) are found in the
`cost-state` line Claude Code writes when a run ends (before its SessionEnd hook): its
cumulative per-model token counts, less what the assistant lines since the previous one
already counted, is the spend no line showed.

The file is read incrementally: a small cursor file per session remembers how far it was read, so
a hook on every tool call reads only what is new. The cursor advances only after the report was
accepted (`Cursor.commit`), so spend is neither lost nor counted twice, and a lock serialises the
hooks of parallel tool calls.

Standard library only: this runs in the hook process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SEEN_KEPT = 500
_FIRST_READ_LIMIT = 64 * 1024 * 1024

USAGE_KEYS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_read_input_tokens", "cache_read"),
    ("cache_creation_input_tokens", "cache_write"),
)

# The same four counts in a cost-state line's modelUsage.
COST_STATE_KEYS = (
    ("inputTokens", "input"),
    ("outputTokens", "output"),
    ("cacheReadInputTokens", "cache_read"),
    ("cacheCreationInputTokens", "cache_write"),
)

Tokens = dict[str, dict[str, int]]


def _add(into: Tokens, model: str, counts: dict[str, int]) -> None:
    totals = into.setdefault(model, {name: 0 for _, name in USAGE_KEYS})
    for _, name in USAGE_KEYS:
        totals[name] += int(counts.get(name) or 0)


def _cost_state(entry: dict[str, Any]) -> Tokens:
    found: Tokens = {}
    usage = entry.get("modelUsage")
    for model, counts in usage.items() if isinstance(usage, dict) else []:
        if isinstance(counts, dict):
            found[str(model)] = {name: _count(counts.get(key)) for key, name in COST_STATE_KEYS}
    return found


class Reading:
    """What a read found. (A plain class: `dataclasses` costs the hook 5 ms to import.)"""

    def __init__(self, context_tokens: int | None = None) -> None:
        # Tokens in the context window now; None when unknown (nothing yet, or just compacted).
        self.context_tokens = context_tokens
        # A compaction happened since the last reading.
        self.compacted = False
        # New spend since the last reading, per model: {"input": n, "output": n, ...}.
        self.usage: dict[str, dict[str, int]] = {}


def _count(value: Any) -> int:
    """A token count as written, or 0 for anything that is not a finite, non-negative number
    (a NaN, a string, a boolean): one bad figure must not lose the whole report."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        return 0
    return int(value)


def _context_tokens(usage: dict[str, Any]) -> int:
    return sum(
        _count(usage.get(k))
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )


class Cursor:
    """How far one session's transcript has been read; held under a lock while in use."""

    def __init__(self, state_dir: Path, session_id: str) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / f"{_safe(session_id)}.json"
        self._lock_file = open(state_dir / f"{_safe(session_id)}.lock", "a+")  # noqa: SIM115
        self.state: dict[str, Any] = {}
        self._next: dict[str, Any] | None = None

    def __enter__(self) -> Cursor:
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            loaded = json.loads(self.path.read_text())
            self.state = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.state = {}
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def wait_for(self, transcript: Path, marker: str, seconds: float) -> bool:
        """Wait (at most `seconds`) until the transcript, past the committed position, holds
        `marker` (a tool call's id): Claude Code posts an HTTP hook the moment the tool returns,
        and may not have written the call's assistant line yet. True when it is there."""
        offset = int(self.state.get("offset") or 0)
        if self.state.get("transcript") != str(transcript):
            offset = 0
        needle = marker.encode()
        deadline = time.monotonic() + seconds
        while True:
            try:
                with transcript.open("rb") as handle:
                    size = handle.seek(0, 2)
                    handle.seek(offset if offset <= size else 0)
                    if needle in handle.read(_FIRST_READ_LIMIT):
                        return True
            except OSError:
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def read(self, transcript: Path) -> Reading:
        """What is new in the transcript since the committed position."""
        state = {k: v for k, v in self.state.items() if k != "pending"}
        if state.get("transcript") != str(transcript):
            state = {"transcript": str(transcript), "offset": 0, "seen": [], "context": None}
        # Spend counted from assistant lines since the last cost-state line, and that line's
        # totals (None: not known, e.g. the first read began in the middle of the file).
        since: Tokens = {m: dict(c) for m, c in (state.get("since") or {}).items()}
        last_state: Tokens | None = state.get("cost_state")
        if state.get("offset", 0) == 0 and last_state is None:
            last_state = {}
        reading = Reading(context_tokens=state.get("context"))
        seen = list(state.get("seen") or [])
        seen_set = set(seen)
        offset = int(state.get("offset") or 0)
        try:
            size = transcript.stat().st_size
        except OSError:
            return reading
        if size < offset:  # rewritten: start again
            offset, seen, seen_set, since, last_state = 0, [], set(), {}, {}
        if offset == 0 and size > _FIRST_READ_LIMIT:
            offset = size - _FIRST_READ_LIMIT  # a huge first read: the recent part is enough
            last_state = None
        for line_end, entry in _entries(transcript, offset):
            offset = line_end
            if entry.get("type") == "cost-state":
                totals = _cost_state(entry)
                if last_state is not None:
                    for model, counts in totals.items():
                        before = last_state.get(model, {})
                        counted = since.get(model, {})
                        unseen = {
                            name: counts[name] - before.get(name, 0) - counted.get(name, 0)
                            for _, name in USAGE_KEYS
                        }
                        if any(v > 0 for v in unseen.values()):
                            _add(reading.usage, model, {k: max(v, 0) for k, v in unseen.items()})
                last_state, since = totals, {}
                continue
            if entry.get("type") == "system" and entry.get("subtype") == "compact_boundary":
                reading.compacted = True
                reading.context_tokens = None
                continue
            if entry.get("type") != "assistant":
                continue
            message = entry.get("message")
            if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
                continue
            usage = message["usage"]
            if entry.get("isSidechain") is not True:
                # Only the main thread fills the main context; subagents' spend still counts.
                reading.context_tokens = _context_tokens(usage)
            key = str(message.get("id") or entry.get("requestId") or entry.get("uuid") or "")
            if key and key in seen_set:
                continue
            if key:
                seen.append(key)
                seen_set.add(key)
            model = str(message.get("model") or "unknown")
            counts = {name: _count(usage.get(source)) for source, name in USAGE_KEYS}
            _add(reading.usage, model, counts)
            _add(since, model, counts)
        self._next = {
            "transcript": str(transcript),
            "offset": offset,
            "seen": seen[-_SEEN_KEPT:],
            "context": reading.context_tokens,
            "since": since,
            "cost_state": last_state,
        }
        return reading

    @staticmethod
    def prune(state_dir: Path, older_than_seconds: float) -> int:
        """Remove the cursors of sessions untouched for that long; how many went.

        A cursor outlives its session's end on purpose: `claude --resume` continues the same
        transcript, and only the cursor keeps the first session's spend from counting again."""
        import time

        limit = time.time() - older_than_seconds
        removed = 0
        with contextlib.suppress(OSError):
            for path in state_dir.iterdir():
                if path.suffix not in (".json", ".lock", ".tmp"):
                    continue
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < limit:
                        path.unlink()
                        removed += path.suffix == ".json"
        return removed

    def commit(self) -> None:
        """The reading was delivered: the next read starts after it."""
        if self._next is None:
            return
        self._write(self._next)

    def pending(self) -> dict[str, Any] | None:
        """A report staged but never answered: {"id": update id, "report": ...}."""
        staged = self.state.get("pending")
        if isinstance(staged, dict) and staged.get("id") and isinstance(staged.get("report"), dict):
            return staged
        return None

    def stage(self, update_id: str, report: dict[str, Any]) -> None:
        """Write down the report about to be sent, with its update id, before sending it. If
        no answer comes (Tether slow or down), the next hook sends exactly this again first:
        Temporal answers a repeated update id with the first outcome, so a report that landed
        late counts once, and one that never landed counts then."""
        staged = {**self.state, "pending": {"id": update_id, "report": report, "next": self._next}}
        self._write(staged)
        self.state = staged

    def settle(self) -> None:
        """The staged report was answered: continue from after it."""
        staged = self.pending()
        after = staged.get("next") if staged else None
        state = after if isinstance(after, dict) else self.state
        state = {k: v for k, v in state.items() if k != "pending"}
        self._write(state)
        self.state = state

    def unstage(self) -> None:
        """The staged report was refused (its session ended): forget it, not what it read."""
        state = {k: v for k, v in self.state.items() if k != "pending"}
        self._write(state)
        self.state = state

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path)


def _safe(session_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)[:120] or "session"


def _entries(path: Path, offset: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset after the line, parsed line) for each complete line from `offset` on; a line
    still being written (no newline yet) is left for the next read."""
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(offset)
        position = offset
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            position += len(raw)
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield position, entry
