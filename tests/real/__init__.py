"""Against real things: the llama.cpp server, SmolLM2, the trainer, a headless browser."""
