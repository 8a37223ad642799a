"""How long an I2C transaction takes: the emulated bus waits this long, the driver plans with it.

One SMBus "I2C block read" of a 16-bit INA219 register (``read_i2c_block_data(addr,
reg, 2)``, the same bytes as ``read_word_data``) is, on the wire::

    S [addr+W] A [reg] A  Sr [addr+R] A [data hi] A [data lo] NA P

five bytes of 8 bits plus an acknowledge bit each: 45 bit times. A register write
(``write_i2c_block_data(addr, reg, [hi, lo])``) is four bytes: 36 bit times. The START,
repeated-START and STOP conditions (about one bit time each) are folded into the
per-call overhead, which also covers the Python call into smbus2, the ``ioctl`` and the
adapter's completion interrupt on a Raspberry Pi.

``IOCTL_OVERHEAD_S`` is a modelling choice: 35 us makes one register read 147.5 us at
400 kHz, the ~150 us per transaction measured for issue #11, and 485 us at the Pi's
default 100 kHz. The chip latches the register when its address byte with the read bit
has been acknowledged (after the first three bytes), so a conversion that completes
during the two data bytes is not in this read.
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_MODE_HZ = 100_000.0  # I2C standard mode: the Raspberry Pi's default (dtparam=i2c_arm_baudrate)
FAST_MODE_HZ = 400_000.0  # I2C fast mode
MIN_BUS_CLOCK_HZ = 1_000.0  # below this an SMBus adapter times out (SMBus minimum is 10 kHz)
MAX_BUS_CLOCK_HZ = 3_400_000.0  # I2C high-speed mode; the INA219 accepts up to 2.56 MHz
BITS_PER_BYTE = 9  # 8 data bits + ACK/NACK
IOCTL_OVERHEAD_S = 35e-6  # per transaction: smbus2 call, ioctl, START/Sr/STOP, completion interrupt, s
REGISTER_READ_BYTES = 5  # addr+W, register, addr+R, 2 data bytes
REGISTER_WRITE_BYTES = 4  # addr+W, register, 2 data bytes
READ_LATCH_BYTES = 3  # the chip latches the register after addr+W, register, addr+R
READ_DATA_BYTES = 2  # clocked out after the latch


@dataclass(frozen=True)
class I2CTiming:
    """Bus clock and per-transaction overhead; transaction durations from byte counts."""

    bus_clock_hz: float = STANDARD_MODE_HZ
    ioctl_overhead_s: float = IOCTL_OVERHEAD_S

    def __post_init__(self) -> None:
        if not MIN_BUS_CLOCK_HZ <= self.bus_clock_hz <= MAX_BUS_CLOCK_HZ:
            raise ValueError(
                f"I2C bus clock must be {MIN_BUS_CLOCK_HZ:.0f}..{MAX_BUS_CLOCK_HZ:.0f} Hz "
                f"(100000 standard, 400000 fast mode), got {self.bus_clock_hz:g}"
            )
        if self.ioctl_overhead_s < 0:
            raise ValueError(f"I2C call overhead must be >= 0 s, got {self.ioctl_overhead_s}")

    def wire_s(self, nbytes: int) -> float:
        """Seconds to clock ``nbytes`` bytes (9 bit times each)."""
        return nbytes * BITS_PER_BYTE / self.bus_clock_hz

    def transaction_s(self, nbytes: int) -> float:
        """Seconds one transaction of ``nbytes`` bytes takes, call overhead included."""
        return self.wire_s(nbytes) + self.ioctl_overhead_s

    @property
    def register_read_s(self) -> float:
        """One 16-bit register read (pointer write, repeated start, two data bytes), s."""
        return self.transaction_s(REGISTER_READ_BYTES)

    @property
    def register_write_s(self) -> float:
        """One 16-bit register write, s."""
        return self.transaction_s(REGISTER_WRITE_BYTES)

    @property
    def read_latch_s(self) -> float:
        """From the start of a register read to the moment the chip latches the register, s."""
        return self.ioctl_overhead_s / 2 + self.wire_s(READ_LATCH_BYTES)

    def describe(self) -> str:
        """E.g. '100 kHz I2C (485 us per register read)'."""
        return f"{self.bus_clock_hz / 1e3:g} kHz I2C ({self.register_read_s * 1e6:.0f} us per register read)"


def detect_bus_clock_hz(bus_number: int, sysfs_root: str = "/sys") -> float | None:
    """The clock of ``/dev/i2c-<n>`` from the device tree (a Raspberry Pi's ``i2c_arm_baudrate``), or None when not stated.

    Reads ``<sysfs>/bus/i2c/devices/i2c-<n>/of_node/clock-frequency``, a big-endian
    32-bit property; adapters without a device-tree node (USB bridges, x86) have none.
    """
    path = f"{sysfs_root}/bus/i2c/devices/i2c-{bus_number}/of_node/clock-frequency"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(4)
    except OSError:
        return None
    if len(raw) != 4:
        return None
    hz = float(int.from_bytes(raw, "big"))
    return hz if MIN_BUS_CLOCK_HZ <= hz <= MAX_BUS_CLOCK_HZ else None
