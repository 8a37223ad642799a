"""Trace files (chunked, CRC-checked, with an event stream), CSV/JSON exchange, replay."""
