"""``leapt view``: a self-contained HTML page to read a run's traces in a browser."""
