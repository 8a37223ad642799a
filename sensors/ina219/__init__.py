"""The INA219 current/power monitor: registers and calibration, driver, emulator, Adafruit path."""
