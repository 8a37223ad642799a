"""udev rules that give the bench user access to I2C buses, NPU sticks and cpufreq/hwmon attributes."""
