"""Regenerate the bundled assets: `python -m glosmsd.assets.make_assets`.

chime.wav: our own notification sound, synthesised here (two decaying sine tones, E6 then
A6, 0.35 s, 22.05 kHz mono 16-bit), so its provenance is this script and nothing else.
glosmsd.png: the app icon at 128 px, drawn by glosmsd.desktop.icon (used as the notification icon).
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
RATE = 22050


def chime() -> bytes:
    frames = bytearray()
    notes = ((1318.5, 0.0, 0.35), (1760.0, 0.09, 0.26))
    total = int(RATE * 0.35)
    for i in range(total):
        t = i / RATE
        value = 0.0
        for freq, start, length in notes:
            if start <= t < start + length:
                local = t - start
                envelope = math.exp(-local * 12.0) * min(1.0, local * 400.0)
                value += 0.35 * envelope * math.sin(2 * math.pi * freq * local)
        frames += struct.pack("<h", int(max(-1.0, min(1.0, value)) * 32000))
    return bytes(frames)


def main() -> None:
    with wave.open(str(HERE / "chime.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(chime())
    from glosmsd.desktop.icon import Look, draw_icon

    draw_icon(128, 0, Look.ONLINE).save(HERE / "glosmsd.png", optimize=True)


if __name__ == "__main__":
    main()
