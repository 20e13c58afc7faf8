"""Cost: pricing files and the TCO (cost per request, monthly cost, break-even)."""
