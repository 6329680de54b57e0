"""The governors: reports, directives, loop and cost holds, the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from tether.contracts.base import Model


class TokenUsage(Model):
    input: int = Field(default=0, ge=0)
    output: int = Field(default=0, ge=0)
    cache_read: int = Field(default=0, ge=0)
    cache_write: int = Field(default=0, ge=0)

    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def add(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
        )

    def most(self, other: TokenUsage) -> TokenUsage:
        """Each count the larger of the two."""
        return TokenUsage(
            input=max(self.input, other.input),
            output=max(self.output, other.output),
            cache_read=max(self.cache_read, other.cache_read),
            cache_write=max(self.cache_write, other.cache_write),
        )

    def less(self, other: TokenUsage) -> TokenUsage:
        """Each count less the other's, never below 0."""
        return TokenUsage(
            input=max(self.input - other.input, 0),
            output=max(self.output - other.output, 0),
            cache_read=max(self.cache_read - other.cache_read, 0),
            cache_write=max(self.cache_write - other.cache_write, 0),
        )


class Price(Model):
    """USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")
    cache_read: float = Field(
        default=0.0, ge=0, description="USD per million tokens read from cache"
    )
    cache_write: float = Field(
        default=0.0, ge=0, description="USD per million tokens written to cache"
    )

    def cost(self, usage: TokenUsage) -> float:
        return (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_read * self.cache_read
            + usage.cache_write * self.cache_write
        ) / 1_000_000


class ToolCall(Model):
    """One finished tool call, reduced by `tether.hook.fingerprint` (the raw output stays with the
    agent: only the action, the error signature and digests reach the workflow)."""

    tool: str = Field(min_length=1, max_length=100)
    ok: bool
    action: str = Field(default="", max_length=200)
    signature: str = Field(default="", max_length=400)
    error: str = Field(default="", max_length=400)
    exit_code: int | None = None
    input_digest: str = Field(default="", max_length=64)
    output_digest: str = Field(default="", max_length=64)
    file_path: str | None = Field(default=None, max_length=500)
    test: str | None = Field(default=None, max_length=400)
    test_summary: str = Field(default="", max_length=400)
    tool_use_id: str | None = Field(default=None, max_length=100)

    def fingerprint(self) -> str:
        return f"{self.tool}|{self.action}|{self.signature}" if not self.ok else ""


class Report(Model):
    """What the agent runtime reports while it works: a tool call, context usage, spend."""

    # The runtime's session id: a report from another runtime session is refused.
    external_id: str | None = Field(default=None, max_length=200)
    tool_call: ToolCall | None = None
    # Tokens in the context window now, and the window (default: the agent's configured one).
    context_tokens: int | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)
    # Tokens of the window the runtime keeps for itself (its output and compaction buffers):
    # the memory stages are judged against the rest, the window the agent can really use.
    context_reserve: int | None = Field(default=None, ge=0)
    # The runtime compacted the context since the last report.
    compacted: bool = False
    compact_summary: str | None = Field(default=None, max_length=8000)
    # New spend since the last report: tokens per model, and USD when the runtime prices it.
    usage: dict[str, TokenUsage] = Field(default_factory=dict)
    cost_usd: float | None = Field(default=None, ge=0)


class RuntimeUsage(Model):
    """What the agent's runtime said about itself, read by Tether's runner from its output
    (Claude Code's stream-json): cumulative for one process, so a repeat is harmless."""

    runtime_session: str = Field(max_length=200)
    # Which of the session's processes (`<runtime session>:<n>`): a late figure of an earlier
    # process is not counted against the next one.
    process: str = Field(max_length=300)
    # Tokens per model so far, each message once (by its id), and the runtime's own price of
    # them when it says one (the final `result`).
    usage: dict[str, TokenUsage] = Field(default_factory=dict)
    cost_usd: float | None = Field(default=None, ge=0)
    context_tokens: int | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)


class ProcessSpend(Model):
    """One process's spend as each source saw it: the hooks' reports and the runtime's own
    figures. The larger counts (the runtime is authoritative where it says more; a source that
    missed something never lowers what the other saw), and only once."""

    process: str
    hook_usd: float = 0.0
    runtime_usd: float = 0.0
    counted_usd: float = 0.0
    hook_tokens: TokenUsage = Field(default_factory=TokenUsage)
    runtime_tokens: TokenUsage = Field(default_factory=TokenUsage)
    counted_tokens: TokenUsage = Field(default_factory=TokenUsage)
    # The hooks report the context (with the runtime's reserve, which its own output does not
    # say): the runtime's context figure is then not used for this process.
    hook_context: bool = False


class Directive(Model):
    kind: Literal[
        "compact",
        "trim",
        "handoff",
        "cost_warning",
        "cost_pause",
        "loop_stop",
        "budget_stop",
        "notice",
    ]
    text: str


class ReportAnswer(Model):
    directives: list[Directive] = Field(default_factory=list)
    # Set when the agent must stop working (loop, cost pause, handoff, blocked session).
    deny: str | None = None
    context_pct: float | None = None
    reports: int = 0
    # The session's state after the report (the Stop hook asks the artifact check only of an
    # active session, without a query first).
    state: str | None = None


class GovernorLimits(Model):
    """The governors' thresholds for one agent, read from tether.toml at session start."""

    context_window: int = 200_000
    compact: float = 0.70
    trim: float = 0.85
    handoff: float = 0.95
    # A stage fires again only once usage went this far below it (or after a compaction).
    rearm_margin: float = 0.05
    loop_limit: int = 5
    cost_warn_ratio: float = 3.0
    cost_pause_ratio: float = 5.0
    cost_window: int = 20
    cost_min_history: int = 5
    cost_ceiling_usd: float = 25.0
    prices: dict[str, Price] = Field(default_factory=dict)
    # A hard budget (`[budget]`) applies to this agent: the session reads its spend and limits.
    budgeted: bool = False

    def price(self, model: str) -> Price | None:
        """The longest configured prefix of the model name, else `default`."""
        matches = [k for k in self.prices if k != "default" and model.startswith(k)]
        if matches:
            return self.prices[max(matches, key=len)]
        return self.prices.get("default")


class LoopEntry(Model):
    """One failing action in the loop window."""

    tool: str
    action: str
    signature: str
    error: str = ""
    count: int = 0
    last_input: str = ""
    last_output: str = ""
    first_at: datetime | None = None
    last_at: datetime | None = None
    # The report number of its last failure, for evicting the oldest.
    last_report: int = 0


class Hold(Model):
    """The governor stopped the agent's work: a loop, a cost pause, or a hard budget crossed.
    Cleared by the founder."""

    kind: Literal["loop", "cost", "budget"]
    reason: str
    since: datetime
    task_id: str | None = None
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


class BudgetInput(Model):
    """Read the hard budgets and the spend against them, for this agent's session."""

    agent: str
    session_key: str
    at: datetime


class BudgetStatus(Model):
    """The limits in force (tether.toml, raised by founder-signed orders) and the spend of the
    *other* sessions in the period, from the ledger; the session adds its own live spend."""

    day: str
    month: str
    agent_daily_usd: float | None = None
    team_monthly_usd: float | None = None
    others_today_usd: float = 0.0
    others_month_usd: float = 0.0
    # The founder's raises in force, for the record: "daily 40.00 by founder (reason)".
    raises: list[str] = Field(default_factory=list)


class CostBaseline(Model):
    """What a task's cost is compared with."""

    # Spend on the task by other sessions (the ledger), before this one.
    task_before_usd: float = 0.0
    # The rolling average over completed tasks; None when there are too few (the ceiling applies).
    average_usd: float | None = None
    tasks: int = 0
    # "kind:<k>", "all", or "ceiling".
    basis: str = "ceiling"


class TestRun(Model):
    command: str
    ok: bool
    summary: str = ""
    at: datetime


class DirectiveRecord(Model):
    kind: str
    report: int
    at: datetime
    context_pct: float | None = None
    cost_usd: float | None = None


class Governor(Model):
    limits: GovernorLimits = Field(default_factory=GovernorLimits)
    reports: int = 0
    tool_calls: int = 0
    failures: int = 0
    context_tokens: int | None = None
    context_pct: float | None = None
    # Stages that fired and have not re-armed yet.
    fired: list[str] = Field(default_factory=list)
    compactions: int = 0
    directive_counts: dict[str, int] = Field(default_factory=dict)
    # The most recent directives issued (bounded).
    directives: list[DirectiveRecord] = Field(default_factory=list)
    # Failing actions by fingerprint (bounded: the least recently failing are dropped).
    loop: dict[str, LoopEntry] = Field(default_factory=dict)
    hold: Hold | None = None
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    # This session's spend per task ("" for no task), the ledger's unit.
    task_costs: dict[str, float] = Field(default_factory=dict)
    task_tokens: dict[str, TokenUsage] = Field(default_factory=dict)
    baseline: CostBaseline | None = None
    # The task cost at which the next warning / pause fires (raised when the founder resumes).
    cost_stage: Literal["", "warned", "paused"] = ""
    pause_at_usd: float | None = None
    # This session's spend per UTC day ("2026-12-05": usd), for the hard budgets (bounded).
    day_costs: dict[str, float] = Field(default_factory=dict)
    # The budgets and the other sessions' spend, as last read (None: not read, or none apply).
    budget: BudgetStatus | None = None
    # The process Tether runs now (None when it runs none): its spend by source.
    process: ProcessSpend | None = None
    # Digests of the update ids of the latest reports applied (bounded), carried across
    # continue-as-new:
    # Temporal forgets a run's update ids with the run, and a report sent again after it (a hook
    # that gave up waiting) must be answered, not counted twice.
    applied: list[str] = Field(default_factory=list)
    # What the handoff archives beyond the task: bounded recent lists.
    files: list[str] = Field(default_factory=list)
    tests: list[TestRun] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    compact_summary: str = ""
    # Tool calls not yet written to PostgreSQL, and how many reports the ledger holds.
    unflushed: list[ToolCallRecord] = Field(default_factory=list)
    flushed_reports: int = 0


class ToolCallRecord(Model):
    seq: int
    at: datetime
    task_id: str | None = None
    call: ToolCall


class NoteInput(Model):
    kind: Literal["decision", "question", "note"] = "note"
    text: str = Field(min_length=1, max_length=1000)


class GovernorHoldInput(Model):
    """A session's governor holds the task: blocked by a loop, or paused by its cost."""

    kind: Literal["loop", "cost"]
    agent: str
    reason: str
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


class CostBaselineInput(Model):
    task_id: str
    session_key: str


Governor.model_rebuild()
