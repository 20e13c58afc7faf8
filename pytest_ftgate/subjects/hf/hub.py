"""Base models named as transformers names them: a local directory, or a Hugging Face Hub id.

A Hub id (`meta-llama/Llama-3.1-8B-Instruct`, what PEFT writes into `adapter_config.json`) is
resolved through huggingface_hub, as `from_pretrained` would: from the user's cache (HF_HOME,
HF_HUB_CACHE), downloading only where the environment allows it (HF_HUB_OFFLINE unset). Only the
files a gate needs are fetched: the config, safetensors weights and the tokenizer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import SubjectError

MODEL_FILES = [
    "config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "added_tokens.json",
]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now rather than at import time."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in ("1", "true", "yes", "on")


def looks_like_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not name.startswith((".", "~")) and ".." not in name


def resolve_model_dir(name: str, *, what: str, hint: str, revision: str | None = None) -> Path:
    """A local directory for `name`: the directory itself, or the Hub snapshot it names.

    `what` says whose model this is (for messages); `hint` says how to point at a local copy instead.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.is_absolute() or not looks_like_hub_id(name):
        named = what if what.endswith(f"={name}") else f"{what} {name!r}"  # `--candidate=x`, or a description and x
        raise SubjectError(f"{named}: no such directory. {hint}")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        raise SubjectError(f"{what} {name!r} is a Hub id, and resolving it needs huggingface_hub; {hint}") from None
    cache = os.environ.get("HF_HUB_CACHE") or str(Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    try:
        snapshot = snapshot_download(
            name, revision=revision, cache_dir=cache, allow_patterns=MODEL_FILES, local_files_only=offline()
        )
    except LocalEntryNotFoundError:
        how = "HF_HUB_OFFLINE is set, so nothing is downloaded" if offline() else "and it could not be downloaded"
        raise SubjectError(
            f"{what} {name!r}{f' (revision {revision})' if revision else ''} is not in the Hugging Face cache "
            f"{cache}, {how}. Fetch it where there is network (`hf download {name}`), or {hint[0].lower() + hint[1:]}"
        ) from None
    except GatedRepoError:
        raise SubjectError(f"{what} {name!r} is a gated repository: accept its licence on the Hub and log in "
                           f"(`hf auth login`), or {hint[0].lower() + hint[1:]}") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise SubjectError(f"{what} {name!r}: no such model (or revision) on the Hub, or it is private. {hint}") from None
    except (HfHubHTTPError, OSError) as exc:
        raise SubjectError(f"{what} {name!r} could not be fetched from the Hub ({exc}). {hint}") from None
    return Path(snapshot)
