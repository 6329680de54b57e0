"""The docs' pages as a reader follows them: every command in a ```console block is run, in
order, and what it prints is compared with what the page shows (`...` stands for any text, see
`matches`). A block titled with a path (```toml title="PATH"```) is the
file the reader writes. The page's conventions, which a reader understands too:

- `$ COMMAND` lines are typed; the lines after one, up to the next, are its output; a last
  output line `[exit N]` says the command ends with status N (otherwise 0).
- a block titled "in another terminal" keeps running: its command is started, its output read
  until the page's last shown line arrives, and it is stopped (Ctrl-C) when the page ends.
- a block titled "a few seconds later" is run again until its output matches (the agents work in
  the background), for at most a minute.
- `...` in a command's word is what the reader copies from an earlier command's output
  (`tether approve deploy-api-...`).
- `cd DIR` changes the folder the next commands run in; `source .venv/bin/activate` is what puts
  `tether` on the PATH, which the runner does for every command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```(\w+)(?:\s+title=\"([^\"]*)\")?\s*$")
EXIT = re.compile(r"^\[exit (\d+)\]$")
# TETHER_DOCS_SHOW=1: print what each command printed where it differs, and go on (to write a
# page's output from a real run).
SHOW = os.environ.get("TETHER_DOCS_SHOW") in ("1", "all")
SHOW_ALL = os.environ.get("TETHER_DOCS_SHOW") == "all"
BACKGROUND = "in another terminal"
# A block whose title starts so is shown, not run, and says why; " (add)" after a file's path
# means the block is added at the end of that file.
NOT_RUN = "not run"
APPEND = " (add)"
EVENTUALLY = "a few seconds later"


@dataclass
class Block:
    page: str
    line: int
    lang: str
    title: str
    text: str


@dataclass
class Command:
    block: Block
    argv: str
    expected: str
    exit: int


def blocks(page: Path) -> list[Block]:
    found, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        found.append(Block(page.name, start, opened[1], opened[2] or "", "\n".join(body)))
        i += 1
    return found


def commands(block: Block) -> list[Command]:
    said: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"{block.page}:{block.line + i}: output before any command")
        argv = lines[i][2:]
        while argv.endswith("\\"):
            i += 1
            argv = argv[:-1] + "\n" + lines[i]
        i += 1
        out = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        code = 0
        if out and EXIT.match(out[-1]):
            code = int(EXIT.match(out[-1])[1])  # type: ignore[index]
            out.pop()
        said.append(Command(block, argv, "\n".join(out).strip("\n"), code))
    return said


def matches(expected: str, got: str) -> bool:
    """doctest's rules, by line: blank lines and runs of spaces do not count, `...` in a line
    stands for any text, and a line of `...` alone for any number of lines."""
    pattern = []
    for line in _lines(expected):
        if line == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            # The spaces next to an ellipsis are its own: "AGENT ... TASK" matches "AGENT TASK".
            parts = [re.escape(p.strip()) for p in line.split("...")]
            pattern.append("[^\n]*?".join(parts) + r"\n")
    text = "".join(f"{line}\n" for line in _lines(got))
    return re.fullmatch("".join(pattern), text) is not None


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def first_difference(expected: str, got: str) -> str:
    """The first line of the page's output that the command's output does not match."""
    shown = expected.splitlines()
    for n in range(1, len(shown) + 1):
        head = "\n".join([*shown[:n], "..."]) if n < len(shown) else expected
        if not matches(head, got):
            return f"(the first line not matched: {shown[n - 1]!r})"
    return ""


@dataclass
class Reader:
    """A reader at a terminal: a folder, an environment, and what runs in other terminals."""

    cwd: Path
    env: dict[str, str]
    home: Path
    background: list[asyncio.subprocess.Process] = field(default_factory=list)
    # Text put back as the page shows it (the ports the test chose -> the defaults).
    rewrite: dict[str, str] = field(default_factory=dict)
    # The other terminal stays in the folder the reader started in (the clone).
    other_cwd: Path | None = None
    ran: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def path(self, text: str) -> Path:
        return (self.cwd / text.replace("~", str(self.home), 1)).resolve()

    async def follow(self, page: Path) -> None:
        if self.other_cwd is None:
            self.other_cwd = self.cwd
        for block in blocks(page):
            where = f"{block.page}:{block.line}"
            if block.lang == "console":
                for command in commands(block):
                    await self.run(command, where)
            elif block.title.startswith(NOT_RUN):
                continue
            elif block.lang in ("bash", "sh") and not block.title:
                raise AssertionError(
                    f"{where}: a command block the tests do not run: make it a console block "
                    f'(run and compared), a file (title="PATH"), or say why not '
                    f'(title="{NOT_RUN}: ...")'
                )
            elif block.title and block.title not in (BACKGROUND, EVENTUALLY):
                name, adds = block.title.removesuffix(APPEND), block.title.endswith(APPEND)
                target = self.path(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("a" if adds else "w") as out:
                    out.write(("\n" if adds else "") + block.text + "\n")
                if block.lang in ("python", "sh", "bash") and block.text.startswith("#!"):
                    target.chmod(0o755)

    async def run(self, command: Command, where: str) -> None:
        if "..." in command.argv:
            command = Command(
                command.block, self.copied(command.argv, where), command.expected, command.exit
            )
        self.ran.append(command.argv)
        words = shlex.split(command.argv) if "\n" not in command.argv else []
        if words[:1] == ["cd"] and len(words) == 2:
            self.cwd = self.path(words[1])
            assert self.cwd.is_dir(), f"{where}: {command.argv}: no such folder"
            return
        if words == ["source", ".venv/bin/activate"]:
            assert (self.cwd / ".venv/bin/activate").exists(), f"{where}: no .venv here"
            return
        if command.block.title == BACKGROUND:
            if command.argv == "^C":
                await self.stop()
            elif command.expected:
                await self.start(command, where)
            else:  # a step that ends, typed in the other terminal before what keeps running
                await self.expect(command, where, self.other_cwd or self.cwd)
            return
        await self.expect(command, where, self.cwd)

    async def expect(self, command: Command, where: str, cwd: Path) -> None:
        """Run `command` in `cwd` until it prints what the page shows (once, unless the page says
        "a few seconds later")."""
        deadline = time.monotonic() + (60 if command.block.title == EVENTUALLY else 0)
        while True:
            code, out = await self.shell(command.argv, cwd)
            if code == command.exit and matches(command.expected, out):
                if SHOW_ALL:
                    print(f"===== {where} $ {command.argv}  [exit {code}]\n{out}", flush=True)
                return
            if time.monotonic() > deadline:
                if SHOW:
                    print(f"===== {where} $ {command.argv}  [exit {code}]\n{out}", flush=True)
                    return
                raise AssertionError(
                    f"{where}: `{command.argv}` printed (exit {code}):\n{out}\n"
                    f"--- the page shows (exit {command.exit}):\n{command.expected}\n"
                    + first_difference(command.expected, out)
                )
            await asyncio.sleep(1)

    def copied(self, argv: str, where: str) -> str:
        """A command with `...` in a word: the reader copies that word from what an earlier
        command printed (`tether approve deploy-api-...`: the id `deploy request` gave)."""

        def fill(found: re.Match[str]) -> str:
            head, tail = found[1], found[2]
            pattern = re.escape(head) + r"[\w.-]+?" + re.escape(tail) + r"(?![\w-])"
            for out in reversed(self.outputs):
                seen = re.findall(pattern, out)
                if seen:  # the first, as lists (the inbox, the queue) show the newest first
                    return str(seen[0])
            raise AssertionError(f"{where}: nothing printed above gives {found[0]!r}")

        return re.sub(r"(\S*)\.\.\.(\S*)", fill, argv)

    async def shell(self, argv: str, cwd: Path) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            argv,
            cwd=cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
        said = self.as_shown(out.decode(errors="replace"))
        self.outputs.append(said)
        return proc.returncode or 0, said

    def as_shown(self, text: str) -> str:
        for chosen, shown in self.rewrite.items():
            text = re.sub(rf"{re.escape(chosen)}(?!\d)", shown, text)
        return text

    async def start(self, command: Command, where: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command.argv,
            cwd=self.other_cwd or self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self.background.append(proc)
        assert proc.stdout is not None
        last = [ln for ln in command.expected.splitlines() if ln.strip() and ln.strip() != "..."]
        want = last[-1].replace("...", "") if last else ""
        seen: list[str] = []
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=300)
            if not line:
                raise AssertionError(f"{where}: `{command.argv}` ended:\n{''.join(seen)}")
            seen.append(self.as_shown(line.decode(errors="replace")))
            if want and want.strip() in seen[-1]:
                break
        got = "".join(seen)
        if SHOW and not matches(command.expected, got):
            print(f"===== {where} $ {command.argv}\n{got}", flush=True)
            return
        assert matches(command.expected, got), (
            f"{where}: `{command.argv}` printed:\n{got}\n--- the page shows:\n{command.expected}\n"
            + first_difference(command.expected, got)
        )

    async def stop(self) -> None:
        for proc in reversed(self.background):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # it ended on its own
                    os.killpg(proc.pid, signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=60)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
        self.background.clear()
