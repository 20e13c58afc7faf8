"""The bundled trainer: QLoRA SFT and DPO on TRL + PEFT + bitsandbytes (reached from the CLI only)."""
