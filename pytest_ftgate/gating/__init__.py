"""A gate run: load the suites, decide each criterion, orchestrate the subjects, hold the promotion contract."""
