"""Reading users' files: JSONL and YAML with line numbers, paths kept beside a suite, training data and its checks."""
