"""What configures a run: the option table, the run config, installed extensions, the rootdir check."""
