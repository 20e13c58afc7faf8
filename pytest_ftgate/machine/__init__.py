"""The machine a run is on: its hardware, the provenance a report records, and quiet third-party output."""
