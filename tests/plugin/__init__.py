"""The pytest face, through pytester: options, verdicts and exit statuses, reports, extensions."""
