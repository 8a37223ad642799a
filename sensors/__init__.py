"""Power sources, the sampling daemon, traces and energy windows.

Stands alone: a Raspberry Pi runs it with nothing else of the project installed.
"""
