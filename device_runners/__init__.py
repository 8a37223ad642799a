"""What runs on a board under test: runtime adapters, the measurement protocol, cpufreq control.

Stands alone and never imports torch: boards install the `runner` extra only.
"""
