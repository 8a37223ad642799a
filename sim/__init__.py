"""Accelerator simulation (ELECTOR, DynaProp sparsity); returns the same Measurement shape as a board."""
