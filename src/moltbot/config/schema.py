"""The config file's schema: models (:mod:`moltbot.validation`) with upstream's camelCase keys.

Unknown keys are kept (``extra="allow"``) so that a newer or hand-extended file
still loads; :func:`unknown_keys` lists them for a warning, or an error in strict
mode. Open mappings (``channels``, ``models``, ``tools``) are typed loosely here and
validated by the subsystem that owns them.
"""

from __future__ import annotations

import types
from typing import Any, Literal

from moltbot.validation import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
    to_camel,
)

Port = int


def _port_field(description: str) -> Any:
    return Field(default=None, ge=1, le=65535, description=description)


class Section(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=to_camel, validate_default=False
    )


class AuthRateLimit(Section):
    attempts: int = Field(
        default=10, ge=1, le=10_000, description="Failed attempts per address before lockout."
    )
    refill_seconds: float = Field(
        default=6.0, gt=0, le=3600, description="Seconds until one more attempt is allowed."
    )


class GatewayAuth(Section):
    mode: Literal["token", "password"] | None = Field(
        default=None, description="Which shared secret clients must present; unset means token."
    )
    token: str | None = Field(default=None, description="Shared token (secret).")
    password: str | None = Field(default=None, description="Shared password (secret).")
    rate_limit: AuthRateLimit = Field(default_factory=AuthRateLimit)


class GatewayReload(Section):
    mode: Literal["hybrid", "hot", "restart", "off"] = Field(
        default="hybrid",
        description="hybrid: safe keys live, others by in-process restart; hot: live only; "
        "restart: always restart; off: ignore file changes.",
    )
    debounce_ms: int = Field(default=300, ge=0, le=60_000)


class HttpEndpoint(Section):
    enabled: bool = False


class ChatCompletionsEndpoint(HttpEndpoint):
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted (bigger: 413).",
    )
    max_messages: int = Field(
        default=1000, ge=1, le=100_000, description="Most entries in `messages` (more: 400)."
    )


class ResponsesEndpoint(HttpEndpoint):
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest POST /v1/responses body accepted (bigger: 413).",
    )


class ToolsInvokeEndpoint(HttpEndpoint):
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest POST /tools/invoke body accepted (bigger: 413).",
    )


class GatewayHttpEndpoints(Section):
    chat_completions: ChatCompletionsEndpoint = Field(default_factory=ChatCompletionsEndpoint)
    responses: ResponsesEndpoint = Field(default_factory=ResponsesEndpoint)
    tools_invoke: ToolsInvokeEndpoint = Field(default_factory=ToolsInvokeEndpoint)


class GatewayHttp(Section):
    endpoints: GatewayHttpEndpoints = Field(default_factory=GatewayHttpEndpoints)


class GatewayControlUi(Section):
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (scheme://host:port) besides the gateway's own that may "
        "open the WebSocket, e.g. a reverse proxy's public URL. Never treated as local.",
    )


class GatewayNodes(Section):
    allow_commands: list[str] = Field(
        default_factory=list,
        description="Node commands allowed beyond the platform's defaults (e.g. canvas.eval).",
    )
    deny_commands: list[str] = Field(
        default_factory=list, description="Node commands never invoked, whatever the platform."
    )


class GatewayRemote(Section):
    url: str | None = None
    token: str | None = None
    password: str | None = None


class Gateway(Section):
    mode: Literal["local", "remote"] | None = Field(
        default=None, description="local runs a gateway here; remote points clients elsewhere."
    )
    port: Port | None = _port_field("Base port: WebSocket + HTTP. Derived: +2 browser, +4 canvas.")
    bind: Literal["loopback", "lan", "tailnet", "auto", "custom"] = Field(
        default="loopback", description="Listen address policy. Beyond loopback needs auth."
    )
    custom_bind_host: str | None = Field(default=None, description="Address for bind=custom.")
    auth: GatewayAuth = Field(default_factory=GatewayAuth)
    reload: GatewayReload = Field(default_factory=GatewayReload)
    restart_grace_seconds: float = Field(
        default=30,
        ge=0,
        le=3600,
        description="How long a restart (SIGUSR1, a restart-requiring config change) waits "
        "for agent runs in flight before aborting them.",
    )
    http: GatewayHttp = Field(default_factory=GatewayHttp)
    remote: GatewayRemote = Field(default_factory=GatewayRemote)
    control_ui: GatewayControlUi = Field(default_factory=GatewayControlUi)
    nodes: GatewayNodes = Field(default_factory=GatewayNodes)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of reverse proxies whose X-Forwarded-For / X-Real-IP / "
        "X-Forwarded-Host are believed. From any other peer those headers make a request "
        "non-local.",
    )


class ModelChoice(Section):
    primary: str
    fallbacks: list[str] = Field(default_factory=list)


class ModelCatalogEntry(Section):
    alias: str | None = Field(default=None, description="Short name usable as a model ref.")
    params: dict[str, Any] = Field(default_factory=dict)


class ModelRetry(Section):
    attempts: int = Field(
        default=3, ge=1, le=10, description="Tries of the last model left in a chain."
    )
    min_delay_ms: int = Field(default=500, ge=0, le=60_000)
    max_delay_ms: int = Field(default=10_000, ge=0, le=300_000)


_DURATION = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"


class ActiveHours(Section):
    start: str = Field(
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Window start, HH:MM (local).",
        examples=["08:00"],
    )
    end: str = Field(
        pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$",
        description="Window end, HH:MM or 24:00; before start: the window wraps midnight.",
        examples=["22:00"],
    )
    timezone: str | None = Field(
        default=None, description='IANA zone of the window; unset or "local": the host zone.'
    )


class Heartbeat(Section):
    """Periodic heartbeat turns (``agents.defaults.heartbeat``, per agent in ``agents.list``)."""

    every: str | None = Field(
        default=None,
        pattern=_DURATION,
        examples=["30m"],
        description='Interval: "30m" (default), "1h"; a bare number is minutes; 0 turns '
        "heartbeats off.",
    )
    prompt: str | None = Field(default=None, description="The heartbeat turn's message.")
    target: str | None = Field(
        default=None,
        description='Where alerts go: "last" (default, the chat the agent last talked in), '
        '"none", or a channel id (telegram, slack).',
    )
    to: str | None = Field(default=None, description="Recipient on the target channel.")
    account_id: str | None = Field(default=None, description="Channel account to send from.")
    active_hours: ActiveHours | None = Field(
        default=None, description="Only run inside this daily window."
    )
    ack_max_chars: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="A reply with HEARTBEAT_OK and at most this many other characters is "
        "not delivered (default 300).",
    )


class MemoryFlush(Section):
    enabled: bool = Field(
        default=False,
        description="Before an automatic compaction, run one silent turn that writes durable "
        "notes to the workspace memory files.",
    )
    soft_threshold_tokens: int = Field(
        default=4000,
        ge=0,
        description="Flush once the context is this close to the compaction threshold.",
    )
    prompt: str | None = Field(default=None, description="The flush turn's message.")
    system_prompt: str | None = Field(default=None, description="Added to its system prompt.")


class Compaction(Section):
    mode: Literal["auto", "manual", "off"] = Field(
        default="auto",
        description="auto: summarise older turns when a turn would not fit the model's context "
        "window; manual: only /compact, sessions.compact and a provider's overflow error; off: "
        "never (the oldest turns are left out of the request instead).",
    )
    reserve_tokens: int = Field(
        default=16_384,
        ge=0,
        description="Headroom kept free for the reply and tool results (at most a quarter of "
        "the window).",
    )
    keep_recent_tokens: int = Field(
        default=20_000,
        ge=0,
        description="Recent turns kept verbatim after a compaction (at most 40% of the window).",
    )
    memory_flush: MemoryFlush = Field(default_factory=MemoryFlush)


class MemoryEmbeddings(Section):
    provider: str = Field(
        description="A models.providers id with an OpenAI-compatible /embeddings endpoint."
    )
    model: str = Field(default="text-embedding-3-small", min_length=1)


class MemorySearch(Section):
    enabled: bool = Field(default=True, description="The memory_search and memory_get tools.")
    embeddings: MemoryEmbeddings | None = Field(
        default=None,
        description="Also rank by meaning (cosine of embeddings), mixed 0.7 with full-text "
        "0.3; without it, full-text (SQLite FTS5, BM25) only.",
    )
    max_results: int = Field(default=6, ge=1, le=50)


class AgentDefaults(Section):
    workspace: str | None = Field(default=None, description="Workspace root of the agents.")
    model: str | ModelChoice | None = Field(
        default=None, description='"provider/model" or {primary, fallbacks}.'
    )
    models: dict[str, ModelCatalogEntry] = Field(
        default_factory=dict, description='Model catalogue: "provider/model" -> {alias, params}.'
    )
    bootstrap_max_chars: int = Field(default=20_000, ge=0)
    skip_bootstrap: bool = False
    timeout_seconds: int = Field(default=600, ge=1)
    max_concurrent: int = Field(default=4, ge=1, description="Agent runs at once (all sessions).")
    compaction: Compaction = Field(default_factory=Compaction)
    memory_search: MemorySearch = Field(default_factory=MemorySearch)
    context_tokens: int | None = Field(
        default=None,
        ge=256,
        description="Context window of models whose definition has no contextWindow "
        "(default 200000).",
    )
    model_retry: ModelRetry = Field(
        default_factory=ModelRetry,
        description="Retries with backoff after a transient failure (429, 5xx, timeout, "
        "broken stream) of the last model left in the chain.",
    )
    heartbeat: Heartbeat | None = Field(
        default=None, description="Heartbeat turns of the default agent (or of every agent)."
    )


class AgentEntry(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str | None = None
    default: bool = False
    workspace: str | None = None
    model: str | ModelChoice | None = None
    heartbeat: Heartbeat | None = Field(
        default=None,
        description="Merged over agents.defaults.heartbeat; once any agent has one, only "
        "those agents run heartbeats.",
    )


class Agents(Section):
    defaults: AgentDefaults = Field(default_factory=AgentDefaults)
    entries: list[AgentEntry] = Field(default_factory=list, alias="list")


class BrowserProfile(Section):
    cdp_port: Port | None = _port_field("Chrome DevTools port of this browser profile.")
    cdp_url: str | None = Field(default=None, description="Attach to this Chrome; never launch.")
    color: str | None = None


class Browser(Section):
    enabled: bool = True
    control_port: Port | None = _port_field("Browser control service port (default base + 2).")
    executable_path: str | None = None
    headless: bool | None = Field(default=None, description="Default: headless without a display.")
    no_sandbox: bool = False
    cdp_url: str | None = None
    default_profile: str | None = None
    profiles: dict[str, BrowserProfile] = Field(default_factory=dict)


class CanvasHost(Section):
    enabled: bool = True
    port: Port | None = _port_field("Canvas host port (default base + 4).")
    root: str | None = Field(
        default=None, description="Served directory (default <workspace>/canvas)."
    )
    live_reload: bool = True


class ModelCost(Section):
    """Price in USD per million tokens (as upstream's catalogue)."""

    input: float = Field(default=0, ge=0)
    output: float = Field(default=0, ge=0)
    cache_read: float = Field(default=0, ge=0)
    cache_write: float = Field(default=0, ge=0)


class ModelDefinition(Section):
    id: str = Field(min_length=1)
    name: str | None = None
    api: str | None = Field(default=None, description="Overrides the provider's api.")
    reasoning: bool = False
    input: list[str] = Field(default_factory=lambda: ["text"])
    context_window: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    cost: ModelCost | None = Field(default=None, description="USD per million tokens.")


class ModelProvider(Section):
    base_url: str | None = Field(
        default=None, description="API root, e.g. http://127.0.0.1:11434/v1."
    )
    api_key: str | None = Field(default=None, description='Secret; "${ENV}" allowed.')
    api: str | None = Field(default=None, description="openai-completions | anthropic-messages.")
    headers: dict[str, str] = Field(default_factory=dict)
    models: list[ModelDefinition] = Field(default_factory=list)
    timeout_seconds: float | None = Field(default=None, gt=0, description="Per request/idle.")


class Models(Section):
    mode: Literal["merge", "replace"] = "merge"
    providers: dict[str, ModelProvider] = Field(default_factory=dict)


class ExecSandbox(Section):
    mode: Literal["auto", "bwrap", "off"] = Field(
        default="auto",
        description="auto: bubblewrap when it works here; bwrap: required; off: never.",
    )
    network: bool = Field(default=False, description="Let sandboxed commands use the network.")


class ExecTool(Section):
    security: Literal["deny", "allowlist", "full"] = Field(
        default="allowlist",
        description="deny: no exec; allowlist: listed binaries with argument rules, no shell "
        "syntax; full: sh -c.",
    )
    allowlist: list[str] | None = Field(default=None, description="Binaries allowed (names/paths).")
    timeout_seconds: int = Field(default=120, ge=1)
    max_output_chars: int = Field(default=20_000, ge=100)
    sandbox: ExecSandbox = Field(default_factory=ExecSandbox)
    ask: Literal["off", "on-miss", "always"] = Field(
        default="on-miss",
        description="When an operator is asked: off: never (what the policy cannot vouch for "
        "is refused); on-miss: when the policy cannot vouch for a command; always: every "
        "command.",
    )
    approval_timeout_seconds: float = Field(
        default=120,
        gt=0,
        le=3600,
        description="How long exec waits for an operator's decision (then askFallback).",
    )


class WebFetchTool(Section):
    enabled: bool = True
    allow_private: bool = Field(default=False, description="Allow private/loopback targets.")
    allow_hosts: list[str] = Field(default_factory=list, description="Allowed even if private.")
    max_bytes: int = Field(default=2_000_000, ge=1024)
    max_chars: int = Field(default=50_000, ge=100)
    timeout_seconds: float = Field(default=20, gt=0)


class WebTools(Section):
    allow_private_network: bool = Field(
        default=False,
        description="Let web_fetch and the browser tool reach private/loopback addresses.",
    )
    allow_hosts: list[str] = Field(
        default_factory=list, description="Hosts web_fetch and the browser tool may reach."
    )
    fetch: WebFetchTool = Field(default_factory=WebFetchTool)


class AudioModel(Section):
    provider: str = Field(description="A models.providers id with api openai-completions.")
    model: str = Field(description="Transcription model, e.g. whisper-1.")


class MediaAudio(Section):
    enabled: bool = Field(default=True, description="Transcribe inbound audio.")
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="Larger audio is skipped.")
    models: list[AudioModel] = Field(
        default_factory=list, description="Tried in order; none: audio is only described."
    )


class MediaTools(Section):
    audio: MediaAudio = Field(default_factory=MediaAudio)


class Tools(Section):
    allow: list[str] | None = Field(default=None, description="Only these tools (* wildcards).")
    deny: list[str] = Field(default_factory=list, description="Never these tools; wins over allow.")
    exec: ExecTool = Field(default_factory=ExecTool)
    web: WebTools = Field(default_factory=WebTools)
    media: MediaTools = Field(default_factory=MediaTools)
    timeout_seconds: float = Field(
        default=300, gt=0, description="Any tool call is cancelled after this many seconds."
    )


class GroupChat(Section):
    mention_patterns: list[str] = Field(
        default_factory=list, description="Case-insensitive regexes that count as a mention."
    )


class TtsOpenAI(Section):
    provider_id: str = Field(
        default="openai",
        description="The models.providers entry (OpenAI-compatible) whose URL and key speak.",
    )
    model: str = Field(default="gpt-4o-mini-tts", description="Speech model.")
    voice: str = Field(default="alloy", description="Voice name.")


class Tts(Section):
    provider: Literal["openai"] = Field(
        default="openai", description="Text-to-speech backend (an OpenAI-compatible /audio/speech)."
    )
    openai: TtsOpenAI = Field(default_factory=TtsOpenAI)
    max_text_length: int = Field(default=4096, ge=1, le=100_000)


class Messages(Section):
    group_chat: GroupChat = Field(default_factory=GroupChat)
    tts: Tts = Field(default_factory=Tts)


PeerKind = Literal["dm", "group", "channel"]
DmScope = Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"]


class PeerMatch(Section):
    kind: PeerKind = Field(description='dm, group or channel ("direct" and "user" mean dm).')
    id: str

    @field_validator("kind", mode="before")
    @classmethod
    def _direct_is_dm(cls, value: Any) -> Any:
        return "dm" if value in ("direct", "user") else value

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class BindingMatch(Section):
    channel: str
    account_id: str | None = Field(
        default=None, description='Account id, or "*" for every account; unset: the default one.'
    )
    peer: PeerMatch | None = None
    guild_id: str | None = None
    team_id: str | None = None


class Binding(Section):
    """Routes messages that match to an agent (see :mod:`moltbot.channels.routing`)."""

    agent_id: str
    match: BindingMatch


class Session(Section):
    dm_scope: DmScope = Field(
        default="main",
        description="DM session key: main (one session across channels), per-peer, "
        "per-channel-peer, per-account-channel-peer.",
    )
    main_key: str = "main"
    identity_links: dict[str, list[str]] = Field(
        default_factory=dict,
        description='One person across channels: canonical id -> ["<channel>:<peer id>", ...].',
    )


class SkillEntry(Section):
    """``skills.entries.<skillKey>``."""

    enabled: bool = True
    api_key: str | None = Field(
        default=None, description="Secret for the skill's primaryEnv variable."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Variables the skill's commands get (exec)."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="The skill's own settings.")


class SkillsLoad(Section):
    extra_dirs: list[str] = Field(
        default_factory=list, description="More skill folders (lowest precedence)."
    )


class Skills(Section):
    allow: list[str] | None = Field(
        default=None, description="Only these skills (names or keys, * wildcards)."
    )
    deny: list[str] = Field(default_factory=list, description="Never these skills.")
    entries: dict[str, SkillEntry] = Field(default_factory=dict)
    load: SkillsLoad = Field(default_factory=SkillsLoad)


NativeSetting = bool | Literal["auto"]


class Commands(Section):
    """Chat commands (``/status``, ``/new``, ...), handled before any model."""

    text: bool = Field(
        default=True,
        description="Parse /commands in channel messages (WebChat always does).",
    )
    native: NativeSetting = Field(
        default="auto",
        description="Register native command menus: auto = Telegram on, Slack off. "
        "channels.<name>.commands.native overrides per channel.",
    )
    native_skills: NativeSetting = Field(
        default="auto",
        description="Add the default agent's skill commands (/<skill>) to the native "
        "command menus (auto = yes wherever a menu is registered).",
    )
    use_access_groups: bool = Field(
        default=True,
        description="Owner-only commands need an owner: a sender on the channel's allowlist "
        "(allowFrom or approved by pairing), or in ownerAllowFrom. false: every sender the "
        "bot answers is an owner.",
    )
    owner_allow_from: list[str] = Field(
        default_factory=list,
        description='Owners as "<channel>:<sender id>" (e.g. "telegram:4242"); when set, only '
        "these are owners in channels.",
    )


class Rescue(Section):
    """What this instance may repair on others (see :mod:`moltbot.rescue`)."""

    targets: list[str] = Field(
        default_factory=list,
        description='Profiles this instance may act on ("default" for the default '
        'instance), or "*" for every other instance of this user on the host.',
    )
    owners: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per channel, the senders (ids or @usernames) who may use the rescue "
        "chat commands; pairing alone is not enough. No wildcard.",
    )
    confirm_seconds: int = Field(
        default=120, ge=10, le=3600, description="How long a change waits for its confirmation."
    )
    start_timeout_seconds: int = Field(
        default=60,
        ge=5,
        le=600,
        description="How long restart/start wait for the target to answer health.",
    )

    @field_validator("targets")
    @classmethod
    def _profile_names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if name != "*" and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
                raise ValueError(f'{name!r} is not a profile name or "*"')
        return value

    @field_validator("owners")
    @classmethod
    def _no_wildcard(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for channel, senders in value.items():
            if any(sender.strip() in ("*", "") for sender in senders):
                raise ValueError(f"owners of {channel}: list senders by id, never '*' or ''")
        return value


class Meta(Section):
    """Stamped by moltbot on every write of the file."""

    last_touched_version: str | None = None
    last_touched_at: str | None = None


class Wizard(Section):
    """Written by ``onboard``."""

    last_run_at: str | None = None
    last_run_version: str | None = None
    last_run_commit: str | None = None
    last_run_command: str | None = None
    last_run_mode: str | None = None


class Cron(Section):
    enabled: bool = Field(
        default=True, description="Run jobs on schedule (off: jobs are kept but never run)."
    )
    store: str | None = Field(
        default=None, description="Jobs file (default <state>/cron/jobs.json); runs/ beside it."
    )
    max_concurrent_runs: int = Field(default=1, ge=1, le=64, description="Jobs running at once.")
    missed_run_grace_seconds: int = Field(
        default=3600,
        ge=0,
        le=30 * 86_400,
        description="A run missed while the gateway was down runs once at start if it fell "
        "due at most this long ago; older ones are skipped and recorded.",
    )


class Hooks(Section):
    enabled: bool = Field(default=False, description="Serve POST <path>/wake and <path>/agent.")
    token: str | None = Field(
        default=None, description="Secret callers send (Authorization: Bearer); required."
    )
    path: str = Field(
        default="/hooks",
        pattern=r"^/[A-Za-z0-9._~-][A-Za-z0-9._~/-]*$",
        description="Base path of the hook endpoints (not /).",
    )
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest hook body."
    )

    @model_validator(mode="after")
    def _token_required(self) -> Hooks:
        if self.enabled and not (self.token or "").strip():
            raise ValueError("hooks.enabled requires hooks.token")
        if self.path.rstrip("/") in ("", "/v1", "/tools"):
            raise ValueError("hooks.path must not be /, /v1 or /tools")
        return self


class Config(Section):
    strict: bool = Field(default=False, description="Unknown keys are errors, not warnings.")
    gateway: Gateway = Field(default_factory=Gateway)
    agents: Agents = Field(default_factory=Agents)
    browser: Browser = Field(default_factory=Browser)
    canvas_host: CanvasHost = Field(default_factory=CanvasHost)
    channels: dict[str, Any] = Field(default_factory=dict)
    models: Models = Field(default_factory=Models)
    tools: Tools = Field(default_factory=Tools)
    messages: Messages = Field(default_factory=Messages)
    bindings: list[Binding] = Field(default_factory=list)
    session: Session = Field(default_factory=Session)

    cron: Cron = Field(default_factory=Cron)
    hooks: Hooks = Field(default_factory=Hooks)
    commands: Commands = Field(default_factory=Commands)
    skills: Skills = Field(default_factory=Skills)
    rescue: Rescue = Field(default_factory=Rescue)
    logging: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    meta: Meta = Field(default_factory=Meta)
    wizard: Wizard = Field(default_factory=Wizard)


def unknown_keys(model: BaseModel, prefix: str = "") -> list[str]:
    """Key paths present in the file but not in the schema (open mappings excluded)."""
    found: list[str] = []
    for key in model.model_extra or {}:
        found.append(f"{prefix}{key}")
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        if isinstance(value, BaseModel):
            found.extend(unknown_keys(value, f"{prefix}{key}."))
        elif isinstance(value, dict):
            for sub_key, sub_value in value.items():
                if isinstance(sub_value, BaseModel):
                    found.extend(unknown_keys(sub_value, f"{prefix}{key}.{sub_key}."))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found.extend(unknown_keys(item, f"{prefix}{key}[{index}]."))
    return found


def unknown_key(keys: list[str | int]) -> str | None:
    """Why ``keys`` is not a key of the schema (with a "did you mean"), or ``None`` when it
    is one, or lies inside an open mapping (``channels``, ``env``, ...) the schema does
    not type."""
    import difflib
    import typing

    from moltbot.config.keypath import format_path

    node: Any = Config
    walked: list[str | int] = []
    index = 0
    while index < len(keys):
        key = keys[index]
        origin = typing.get_origin(node)
        if origin in (typing.Union, types.UnionType):
            typed = [a for a in typing.get_args(node) if a is not type(None)]
            models = [a for a in typed if isinstance(a, type) and issubclass(a, BaseModel)]
            node = models[0] if models else (typed[0] if len(typed) == 1 else Any)
            continue
        if origin is dict:
            node = typing.get_args(node)[1]
        elif origin is list:
            node = typing.get_args(node)[0]
        elif isinstance(node, type) and issubclass(node, BaseModel):
            fields = {(f.alias or n): f for n, f in node.model_fields.items()}
            field = fields.get(str(key)) or node.model_fields.get(str(key))
            if field is None:
                where = format_path([*walked, key])
                close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.6)
                hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
                return f"unknown key {where}{hint}"
            node = field.annotation
        else:
            return None  # a scalar or an open mapping: nothing more to check
        walked.append(key)
        index += 1
    return None
