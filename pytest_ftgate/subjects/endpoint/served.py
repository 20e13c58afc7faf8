"""What an OpenAI-compatible server says about the model it serves, and whether that identifies it.

An `openai:` subject named by its URL and model name alone could be any model: a server redeployed
under the same name would be taken for the model that was measured. So before its first request the
subject asks the server:

- `GET /models`. vLLM reports each served model's `root` (the directory or Hub id it loaded; for a
  LoRA module, the adapter's path), its `parent` (a LoRA module's base) and `max_model_len`.
  llama.cpp's server reports `meta` (parameters, size, vocabulary) and owns up as `llamacpp`.
- llama.cpp's `/props`: the model file's path and the chat template it renders with.
- OpenAI's own API pins dated snapshots (`gpt-4o-2024-08-06`) and fine-tuned models (`ft:...`):
  there the name is the identity. An alias (`gpt-4o-mini`) moves, and identifies nothing.

What the server reports goes into the subject's fingerprint when it identifies the model, so a
redeploy that loads other files is another model to the goldens, the promotion record and the
output cache. These are the paths the server reports, not hashes of its files: serve each version
from its own path (ftgate's trainer writes each run to its own directory).

Where nothing identifies the model (llama-cpp-python's server, most proxies), its answers are not
reused across runs unless the user says so (`--ftgate-reuse-unidentified`), and reports and the
promotion record say that the server did not identify it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .client import EndpointClient

# the fields of a /models entry that describe the model, not the request (`created`, `permission` change each time)
KEPT = ("id", "owned_by", "root", "parent", "max_model_len", "meta")
PINNED = re.compile(r"^ft:|-\d{4}-\d{2}-\d{2}$")  # OpenAI's fine-tuned models and dated snapshots
OPENAI_HOSTS = frozenset({"api.openai.com"})


@dataclass(frozen=True)
class Served:
    """What the server reported about one model, and what of it identifies the model ('' when nothing does)."""

    reported: dict[str, Any] = field(default_factory=dict)
    identified_by: str = ""

    @property
    def identified(self) -> bool:
        return bool(self.identified_by)

    def to_json(self) -> dict[str, Any]:
        return {"reported": self.reported, "identified_by": self.identified_by}

    def describe(self) -> str:
        """One line for reports: what identifies it, or that nothing does."""
        if not self.identified:
            return "the server does not identify the model it serves"
        shown = {k: v for k, v in self.reported.items() if k in ("root", "parent", "model_path")}
        return f"identified by {self.identified_by}" + (": " + ", ".join(f"{k} {v}" for k, v in shown.items()) if shown else "")


def what_changed(then: dict[str, Any] | None, now: dict[str, Any] | None) -> str:
    """What the server reported differently then and now, as "root a then, b now; ..." ('' if nothing it reported)."""
    before, after = (then or {}).get("reported") or {}, (now or {}).get("reported") or {}
    return "; ".join(f"{k} {before.get(k)!r} then, {after.get(k)!r} now"
                     for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k))


def server_root(base_url: str) -> str:
    """The server's own root, where llama.cpp's /props lives: the base URL without its /v1."""
    return re.sub(r"/v1/?$", "", base_url.rstrip("/"))


def ask(client: EndpointClient, model: str) -> Served:
    """What the server at `client` says it serves as `model`. An endpoint that lists no models, or
    not this one (a proxy may route names it does not list), is unidentified, not an error: the
    first completion says whether the model exists."""
    where = f"GET /models, asking what openai:{model} is"
    listed = client.get_json("models", model=model, where=where)
    entries = listed.get("data") if isinstance(listed, dict) else None
    entry = next((m for m in entries or () if isinstance(m, dict) and m.get("id") == model), None)
    reported = {k: entry[k] for k in KEPT if entry is not None and entry.get(k) not in (None, "", [], {})}
    if reported.get("owned_by") == "llamacpp":
        props = client.get_json(server_root(client.base_url) + "/props", model=model, where="GET /props (llama.cpp)")
        if isinstance(props, dict):
            if props.get("model_path"):
                reported["model_path"] = str(props["model_path"])
            if props.get("chat_template"):
                reported["chat_template_sha256"] = hashlib.sha256(str(props["chat_template"]).encode()).hexdigest()
    return Served(reported, identified_by(reported, model, client.base_url))


def identified_by(reported: dict[str, Any], model: str, base_url: str) -> str:
    """Which report identifies the model: a path the server loaded, or a name its provider pins."""
    if reported.get("root"):
        return "the server's /models root (vLLM)"
    if reported.get("model_path"):
        return "the model file in llama.cpp's /props"
    if urlsplit(base_url).hostname in OPENAI_HOSTS and PINNED.search(model):
        return "its pinned name (a dated snapshot or fine-tuned model on OpenAI's API)"
    return ""


__all__ = ["Served", "ask", "identified_by", "server_root", "what_changed"]
