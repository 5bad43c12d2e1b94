"""What the server counts for `/metrics`: plain counters kept where the work happens,
read by a Prometheus collector at scrape time, merged across `--workers`."""
