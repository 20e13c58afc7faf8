"""The embedded default model, for real (slow: converts the packaged GGUF, about a minute).

What a small model knows is not tested here: its greedy answer depends on the CPU's kernels (on
an AVX-512 machine llama.cpp's SmolLM2 calls Paris "L'Étoile"). The test checks the mechanics,
each against a reference computed on the same machine in the same process: the package's GGUF
loads offline with an empty Hugging Face home, the converted folder holds the GGUF's weights and
tokenizer and computes the same logits, and the plugin's subject decodes exactly what plain
transformers decodes, the same on a second call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROMPTS = ["What is the capital of France?", "Name a colour."]

# Runs in a fresh interpreter with HF_HOME pointing at an empty folder, so nothing cached by an
# earlier run (or downloaded) can stand in for the package's GGUF. Prints one JSON line.
PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from fixtures.smollm2 import ensure_model, gguf_path
from pytest_ftgate.stores.cache import Cache
from pytest_ftgate.subjects import Resolver, SubjectOptions

prompts = {prompts!r}
folder = ensure_model(Path({folder!r}))
gguf = gguf_path()
g_tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
g_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
tok = AutoTokenizer.from_pretrained(str(folder))
model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()

g_state, state = g_model.state_dict(), model.state_dict()
weights_differ = sorted(k for k in g_state if k not in state or not torch.equal(g_state[k], state[k]))
chats = [[{{"role": "user", "content": p}}] for p in prompts]
rendered = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
g_rendered = [g_tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
ids = [tok(r, add_special_tokens=False)["input_ids"] for r in rendered]
g_ids = [g_tok(r, add_special_tokens=False)["input_ids"] for r in g_rendered]
with torch.inference_mode():
    logit_diff = max(
        float((model(torch.tensor([i])).logits - g_model(torch.tensor([i])).logits).abs().max()) for i in ids
    )
    # the reference: plain transformers, one prompt at a time, greedy, stopping at end of turn
    eos = model.generation_config.eos_token_id
    reference = []
    for i in ids:
        out = model.generate(torch.tensor([i]), attention_mask=torch.ones(1, len(i), dtype=torch.long),
                             max_new_tokens=16, do_sample=False, eos_token_id=eos, pad_token_id=tok.pad_token_id)
        reference.append(tok.decode(out[0, len(i):], skip_special_tokens=True))

base, _ = Resolver(SubjectOptions(batch_size=1), Cache(None)).pair(None, str(folder))
subject = [base.generate(p, max_new_tokens=16) for p in prompts]
again = [base.generate(p, max_new_tokens=16) for p in prompts]
print("PROBE", json.dumps({{
    "weights_differ": weights_differ, "n_weights": len(g_state), "logit_diff": logit_diff,
    "template_same": rendered == g_rendered, "ids_same": ids == g_ids,
    "eos": tok.convert_ids_to_tokens(eos if isinstance(eos, int) else eos[0]),
    "pad": tok.pad_token, "tok_eos": tok.eos_token,
    "reference": reference, "subject": subject, "again": again,
}}))
"""


@pytest.mark.slow
def test_smollm2_loads_offline_from_the_package_and_decodes_like_transformers(tmp_path):
    pytest.importorskip("gguf")
    folder = tmp_path / "smollm2"
    code = PROBE.format(root=str(ROOT), prompts=PROMPTS, folder=str(folder))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])

    assert (folder / "model.safetensors").exists() and (folder / "chat_template.jinja").exists()
    assert not (tmp_path / "empty-hf-home" / "hub").exists()  # nothing fetched into the HF home
    # the converted folder is the GGUF: the same dequantized weights, template and tokens
    assert probe["weights_differ"] == [] and probe["n_weights"] > 100
    assert probe["template_same"] and probe["ids_same"]
    assert probe["logit_diff"] < 1e-4, "same weights and config must give the same logits on one machine"
    # it stops at the chat template's end of turn, and padding is not that token
    assert probe["eos"] == probe["tok_eos"] == "<|im_end|>" and probe["pad"] != "<|im_end|>"
    # the plugin decodes what transformers decodes, deterministically; what it says is not checked
    assert probe["subject"] == probe["reference"]
    assert probe["again"] == probe["subject"]
    # and it generated something to compare (an empty decode would make the two checks above vacuous)
    assert any(text.strip() for text in probe["reference"]), probe["reference"]
