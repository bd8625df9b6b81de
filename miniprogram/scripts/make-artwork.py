#!/usr/bin/env python3
"""Draws the mini-program's artwork into static/mp/ (standard library only).

The backend embeds static/mp/ and serves each file under a content-hashed name listed in
/static/mp/manifest.json, so the files here keep plain, stable names and the mini-program
package carries no images. The pictures are drawn rather than designed in a tool so that anyone
can change a colour and regenerate them:

    python3 miniprogram/scripts/make-artwork.py            # writes /<repo>/static/mp/*.png
    python3 miniprogram/scripts/make-artwork.py --out DIR

Card backgrounds: one per tier code of the default tier table (normal, gold, platinum, diamond;
see migration m20261123_000004_create_loyalty). A tier an admin adds later falls back to
card-normal in the mini-program, so a new tier needs a new entry in CARDS, not a code change.

Everything is smooth gradients and soft circles with no noise or dithering: PNG's row filters
turn a smooth gradient into runs of tiny differences, which is what keeps each file small.
"""
import argparse
import math
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, '..', '..', 'static', 'mp'))
# Bigger than this and the image is doing something the calm look does not need.
SIZE_BUDGET = 30 * 1024


def hex_rgb(h):
    h = h.lstrip('#')
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def lerp(a, b, t):
    return a + (b - a) * t


def smoothstep(e0, e1, x):
    t = min(1.0, max(0.0, (x - e0) / (e1 - e0)))
    return t * t * (3 - 2 * t)


class Canvas:
    """RGB floats, row-major; drawn with gradients and alpha-blended soft shapes."""

    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = [[(0.0, 0.0, 0.0)] * w for _ in range(h)]

    def gradient(self, stops, angle_deg):
        """A linear gradient along `angle_deg` (0 = left to right, 90 = top to bottom)."""
        a = math.radians(angle_deg)
        dx, dy = math.cos(a), math.sin(a)
        corners = [x * dx + y * dy for x in (0, self.w) for y in (0, self.h)]
        lo, hi = min(corners), max(corners)
        cols = [(pos, hex_rgb(c)) for pos, c in stops]
        for y in range(self.h):
            row = self.px[y]
            for x in range(self.w):
                t = ((x * dx + y * dy) - lo) / (hi - lo)
                for i in range(len(cols) - 1):
                    p0, c0 = cols[i]
                    p1, c1 = cols[i + 1]
                    if t <= p1 or i == len(cols) - 2:
                        # Linear between stops: easing flattens the slope at each stop, and
                        # the eye reads that flat spot as a seam.
                        u = 0.0 if p1 == p0 else min(1.0, max(0.0, (t - p0) / (p1 - p0)))
                        row[x] = (lerp(c0[0], c1[0], u), lerp(c0[1], c1[1], u), lerp(c0[2], c1[2], u))
                        break

    def circle(self, cx, cy, r, colour, alpha, soft=0.0, ring=None):
        """A disc (or, with `ring` = width, an outline) blended over the canvas.

        `soft` is the fraction of the radius over which the edge fades, so large shapes read as
        light rather than as stickers.
        """
        col = hex_rgb(colour)
        feather = max(1.0, r * soft)  # one pixel of anti-aliasing at least
        reach = r + feather + 2
        y0, y1 = max(0, int(cy - reach)), min(self.h, int(cy + reach) + 1)
        x0, x1 = max(0, int(cx - reach)), min(self.w, int(cx + reach) + 1)
        for y in range(y0, y1):
            row = self.px[y]
            for x in range(x0, x1):
                d = math.hypot(x + 0.5 - cx, y + 0.5 - cy)
                if ring is None:
                    cover = 1.0 - smoothstep(r - feather, r, d)
                else:
                    cover = 1.0 - smoothstep(ring / 2, ring / 2 + feather, abs(d - r))
                if cover <= 0.0:
                    continue
                k = alpha * cover
                p = row[x]
                row[x] = (lerp(p[0], col[0], k), lerp(p[1], col[1], k), lerp(p[2], col[2], k))

    def rows(self):
        for row in self.px:
            yield bytes(min(255, max(0, int(round(c)))) for p in row for c in p)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(rows, bpp=3):
    """PNG filtering with libpng's heuristic: per row, the filter whose output sums smallest."""
    prev = None
    out = bytearray()
    for raw in rows:
        n = len(raw)
        up = prev if prev is not None else bytes(n)
        cands = []
        cands.append((0, raw))
        cands.append((1, bytes((raw[i] - (raw[i - bpp] if i >= bpp else 0)) & 255 for i in range(n))))
        cands.append((2, bytes((raw[i] - up[i]) & 255 for i in range(n))))
        cands.append((3, bytes((raw[i] - (((raw[i - bpp] if i >= bpp else 0) + up[i]) >> 1)) & 255 for i in range(n))))
        cands.append((4, bytes((raw[i] - paeth(raw[i - bpp] if i >= bpp else 0, up[i], up[i - bpp] if i >= bpp else 0)) & 255 for i in range(n))))
        kind, data = min(cands, key=lambda c: sum(b if b < 128 else 256 - b for b in c[1]))
        out.append(kind)
        out += data
        prev = raw
    return bytes(out)


def png_bytes(canvas):
    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack('>IIBBBBB', canvas.w, canvas.h, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(filter_rows(canvas.rows()), 9)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) + chunk(b'IEND', b'')


# --- the pictures --------------------------------------------------------------------------

# Member cards, 690x320 (the card's width in rpx on a 750rpx screen, at 1x; WeChat scales it).
# White text sits on the left half, so the left stays darker and plain and the light lives on
# the right. Colours follow the page's fallback gradients (pages/index/index.wxss), so the swap
# from colour to artwork is a gentle one.
CARDS = {
    'normal': {'stops': [(0, '#2A7366'), (1, '#5DA596')], 'glow': '#D8F0E9', 'ring': '#E9F7F3'},
    'gold': {'stops': [(0, '#7E6139'), (1, '#BC9C66')], 'glow': '#FFF1D2', 'ring': '#FFF6E3'},
    'platinum': {'stops': [(0, '#525E67'), (1, '#93A2AC')], 'glow': '#F1F5F8', 'ring': '#F7FAFC'},
    'diamond': {'stops': [(0, '#262D3E'), (1, '#5A6587')], 'glow': '#DCE4FF', 'ring': '#EEF2FF'},
}


def card(spec):
    c = Canvas(690, 320)
    # Left to right: identical rows compress to almost nothing; the glows give the diagonal.
    c.gradient(spec['stops'], 0)
    c.circle(600, 40, 230, spec['glow'], 0.16, soft=0.55)
    c.circle(660, 300, 150, spec['glow'], 0.10, soft=0.5)
    c.circle(560, 150, 120, spec['ring'], 0.18, ring=2.0)
    c.circle(610, 120, 190, spec['ring'], 0.10, ring=1.5)
    return c


def event_banner():
    # Above the member-day list: a light jade morning, no text (titles are the page's).
    c = Canvas(690, 240)
    c.gradient([(0, '#DCEFEA'), (0.6, '#EAF4EF'), (1, '#F6EFE6')], 0)
    c.circle(120, 40, 170, '#BFE0D7', 0.45, soft=0.6)
    c.circle(560, 200, 200, '#F1DCC4', 0.40, soft=0.6)
    c.circle(600, 60, 90, '#2E7D6F', 0.10, ring=2.0)
    c.circle(90, 190, 60, '#2E7D6F', 0.08, ring=2.0)
    return c


def referral_share():
    # The share card (5:4, WeChat's ratio for imageUrl): a jade pearl with ripples spreading
    # from it, one member's invitation reaching out, on the page's warm off-white. WeChat
    # prints the title above it.
    c = Canvas(500, 400)
    c.gradient([(0, '#F7F5F2'), (0.55, '#EEF5F2'), (1, '#DCEDE7')], 90)
    c.circle(440, 40, 180, '#F3DFC8', 0.35, soft=0.7)
    for r, a in ((124, 0.26), (172, 0.13)):
        c.circle(250, 200, r, '#2E7D6F', a, ring=1.5)
    c.circle(250, 200, 84, '#3F8F80', 0.90, soft=0.03)
    c.circle(232, 180, 70, '#A9D6CB', 0.45, soft=1.0)
    return c


def pictures():
    for code, spec in CARDS.items():
        yield f'card-{code}.png', lambda spec=spec: card(spec)
    yield 'event-banner.png', event_banner
    yield 'referral-share.png', referral_share


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--out', default=DEFAULT_OUT, help=f'output directory (default {DEFAULT_OUT})')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    over = []
    for name, draw in pictures():
        data = png_bytes(draw())
        with open(os.path.join(args.out, name), 'wb') as f:
            f.write(data)
        print(f'{name}: {len(data) / 1024:.1f} KB')
        if len(data) > SIZE_BUDGET:
            over.append(name)
    if over:
        print(f'over the {SIZE_BUDGET // 1024} KB budget: {", ".join(over)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
