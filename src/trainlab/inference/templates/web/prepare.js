// trainlab's preprocessing in the browser: the arithmetic of trainlab/data/images.py (read_image,
// mnist_style, ResizePolicy.apply, resize_to), so the page gives the model the pixels that
// `trainlab predict` gives it. float32 steps are rounded as numpy and torch round them
// (Math.fround); halves round to even, as Python's round() and np.rint do.
"use strict";
const Prepare = (() => {
  const FIELD = 28, BOX = 20, INK_THRESHOLD = 0.2, MIN_CONTRAST = 0.1;
  const f32 = Math.fround;

  function roundHalfEven(x) {
    const down = Math.floor(x), rest = x - down;
    if (rest !== 0.5) return Math.round(x);
    return down % 2 === 0 ? down : down + 1;
  }

  // RGBA bytes (already on white, as Pillow composites transparency) -> grey float32 in
  // [0, 1], 1 = white: Pillow's "L" conversion, then / 255
  function grey(rgba, count) {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      out[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16) / 255;
    }
    return out;
  }

  function rgb(rgba, count) {  // -> float32 planes R, G, B in [0, 1]
    const out = new Float32Array(3 * count);
    for (let i = 0; i < count; i++)
      for (let c = 0; c < 3; c++) out[c * count + i] = rgba[4 * i + c] / 255;
    return out;
  }

  function median(values) {
    const sorted = Float32Array.from(values).sort(), n = sorted.length;
    return n % 2 ? sorted[(n - 1) / 2] : f32(f32(sorted[n / 2 - 1] + sorted[n / 2]) / 2);
  }

  // whether the picture is dark ink on light paper, judged from its border (the outer 5%)
  function background(image, h, w) {
    const band = Math.max(1, roundHalfEven(0.05 * Math.min(h, w))), border = [];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (y < band || y >= h - band) border.push(image[y * w + x]);
    for (let y = 0; y < h; y++) for (let x = 0; x < band; x++) border.push(image[y * w + x]);
    for (let y = 0; y < h; y++) for (let x = w - band; x < w; x++) border.push(image[y * w + x]);
    const level = median(border);
    return [level > 0.5, level];
  }

  function inkOf(image, h, w) {  // ink bright on 0, contrast stretched, faint noise cut
    const [inverted, level] = background(image, h, w), n = h * w, ink = new Float32Array(n);
    let contrast = 0;
    for (let i = 0; i < n; i++) {
      ink[i] = Math.max(0, inverted ? f32(level - image[i]) : f32(image[i] - level));
      contrast = Math.max(contrast, ink[i]);
    }
    if (contrast < MIN_CONTRAST) return [new Float32Array(n), inverted];
    const cut = f32(INK_THRESHOLD), span = f32(1 - INK_THRESHOLD);
    for (let i = 0; i < n; i++)
      ink[i] = Math.min(1, Math.max(0, f32(f32(f32(ink[i] / contrast) - cut) / span)));
    return [ink, inverted];
  }

  // torch's bilinear interpolate with antialias=True, align_corners=False, along one axis
  function weights(inSize, outSize) {
    const scale = inSize / outSize, support = scale >= 1 ? scale : 1;
    const invscale = scale >= 1 ? 1 / scale : 1, rows = [];
    for (let i = 0; i < outSize; i++) {
      const centre = scale * (i + 0.5);
      const low = Math.max(Math.trunc(centre - support + 0.5), 0);
      const size = Math.min(Math.trunc(centre + support + 0.5), inSize) - low;
      const ws = [];
      let total = 0;
      for (let j = 0; j < size; j++) {
        const x = Math.abs((j + low - centre + 0.5) * invscale);
        ws.push(x < 1 ? 1 - x : 0); total += ws[j];
      }
      rows.push([low, ws.map(v => f32(total ? v / total : v))]);
    }
    return rows;
  }

  // one plane h×w -> outH×outW: the width first, then the height, a side of unchanged size
  // left as it is (as torch does)
  function resize(plane, h, w, outH, outW) {
    let x = plane;
    if (outW !== w) {
      const ws = weights(w, outW), next = new Float32Array(h * outW);
      for (let y = 0; y < h; y++)
        for (let o = 0; o < outW; o++) {
          const [low, k] = ws[o];
          let s = 0;
          for (let j = 0; j < k.length; j++) s = f32(s + f32(k[j] * x[y * w + low + j]));
          next[y * outW + o] = s;
        }
      x = next;
    }
    if (outH !== h) {
      const ws = weights(h, outH), next = new Float32Array(outH * outW);
      for (let o = 0; o < outH; o++) {
        const [low, k] = ws[o];
        for (let c = 0; c < outW; c++) {
          let s = 0;
          for (let j = 0; j < k.length; j++) s = f32(s + f32(k[j] * x[(low + j) * outW + c]));
          next[o * outW + c] = s;
        }
      }
      x = next;
    }
    return x.map(v => Math.min(1, Math.max(0, v)));
  }

  function fit(crop, h, w, box) {  // the longer side to `box` pixels, the aspect ratio kept
    const scale = box / Math.max(h, w);
    const nh = Math.max(1, roundHalfEven(h * scale)), nw = Math.max(1, roundHalfEven(w * scale));
    return [resize(crop, h, w, nh, nw), nh, nw];
  }

  // the patch pasted so its centre of mass is at the field's centre; null when it would leave
  // the field (a one-pixel margin), unless `force`
  function place(patch, h, w, force) {
    let total = 0, sy = 0, sx = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = patch[y * w + x]; total += v; sy += y * v; sx += x * v;
      }
    const centre = (FIELD - 1) / 2, highTop = FIELD - 2 - h, highLeft = FIELD - 2 - w;
    let top = centre - sy / total, left = centre - sx / total;
    if (!(1 <= top && top <= highTop && 1 <= left && left <= highLeft)) {
      if (!force) return null;
      top = Math.min(Math.max(top, 1), highTop); left = Math.min(Math.max(left, 1), highLeft);
    }
    const wholeTop = Math.floor(top), wholeLeft = Math.floor(left);
    const fy = top - wholeTop, fx = left - wholeLeft, field = new Float64Array(FIELD * FIELD);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) field[(wholeTop + y) * FIELD + wholeLeft + x] = patch[y * w + x];
    const at = (y, x) => field[((y + FIELD) % FIELD) * FIELD + ((x + FIELD) % FIELD)];
    const out = new Float64Array(FIELD * FIELD);
    for (let y = 0; y < FIELD; y++)
      for (let x = 0; x < FIELD; x++)
        out[y * FIELD + x] = (1 - fy) * (1 - fx) * at(y, x) + fy * (1 - fx) * at(y - 1, x)
          + (1 - fy) * fx * at(y, x - 1) + fy * fx * at(y - 1, x - 1);
    return out;
  }

  function toBytes(values) {
    return Uint8Array.from(values, v => Math.min(255, Math.max(0, roundHalfEven(v * 255))));
  }

  // 28×28, light ink on a black border, in 20×20, centred within a pixel: kept as it is
  function alreadyDigit(image, h, w) {
    if (h !== FIELD || w !== FIELD || background(image, h, w)[0]) return false;
    const edge = [];
    for (let i = 0; i < FIELD; i++)
      edge.push(image[i], image[(FIELD - 1) * FIELD + i], image[i * FIELD],
                image[i * FIELD + FIELD - 1]);
    if (median(edge) > 0.02) return false;
    let top = FIELD, bottom = -1, left = FIELD, right = -1, sum = 0, sy = 0, sx = 0;
    for (let y = 0; y < FIELD; y++)
      for (let x = 0; x < FIELD; x++) {
        const v = image[y * FIELD + x];
        if (v > 0.02) {
          top = Math.min(top, y); bottom = Math.max(bottom, y);
          left = Math.min(left, x); right = Math.max(right, x);
        }
        sum += v; sy += v * y; sx += v * x;
      }
    if (bottom < 0 || Math.max(bottom - top, right - left) + 1 > BOX) return false;
    const centre = (FIELD - 1) / 2;
    return Math.abs(sy / sum - centre) <= 1 && Math.abs(sx / sum - centre) <= 1;
  }

  // grey h×w (1 = white) -> an MNIST digit: uint8 28×28, light ink on black, centred by mass
  function digit(image, h, w) {
    if (alreadyDigit(image, h, w))
      return {pixels: toBytes(image), channels: 1, height: FIELD, width: FIELD, inverted: false};
    const [ink, inverted] = inkOf(image, h, w);
    let top = h, bottom = -1, left = w, right = -1;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (ink[y * w + x] !== 0) {
          top = Math.min(top, y); bottom = Math.max(bottom, y);
          left = Math.min(left, x); right = Math.max(right, x);
        }
    if (bottom < 0)
      throw new Error("no digit found (the image is blank, or has too little contrast). Draw " +
                      "or photograph the digit darker or lighter than its background.");
    const ch = bottom - top + 1, cw = right - left + 1, crop = new Float32Array(ch * cw);
    for (let y = 0; y < ch; y++)
      for (let x = 0; x < cw; x++) crop[y * cw + x] = ink[(top + y) * w + left + x];
    let field = null;
    for (let box = BOX; box >= BOX / 2 && field === null; box--) {
      const [patch, ph, pw] = fit(crop, ch, cw, box);
      field = place(patch, ph, pw, false);
    }
    if (field === null) {
      const [patch, ph, pw] = fit(crop, ch, cw, BOX / 2);
      field = place(patch, ph, pw, true);
    }
    return {pixels: toBytes(field), channels: 1, height: FIELD, width: FIELD, inverted};
  }

  // a recorded ResizePolicy: planes (1 or 3) h×w -> uint8 C×H×W, cropped or padded
  function byPolicy(planes, count, h, w, policy) {
    const [H, W] = policy.size, C = policy.channels;
    let source = planes;
    if (C === 1 && planes.length === 3 * count) {
      source = new Float32Array(count);
      const k = [0.299, 0.587, 0.114].map(f32);
      for (let i = 0; i < count; i++)
        source[i] = f32(f32(f32(planes[i] * k[0]) + f32(planes[count + i] * k[1]))
                        + f32(planes[2 * count + i] * k[2]));
    }
    const scale = policy.mode === "crop"
      ? Math.max(H / h, W / w) / policy.crop : Math.min(H / h, W / w);
    const nh = Math.max(1, roundHalfEven(h * scale)), nw = Math.max(1, roundHalfEven(w * scale));
    const out = new Uint8Array(C * H * W);
    const dy = policy.mode === "crop" ? -Math.floor((nh - H) / 2) : Math.floor((H - nh) / 2);
    const dx = policy.mode === "crop" ? -Math.floor((nw - W) / 2) : Math.floor((W - nw) / 2);
    for (let c = 0; c < C; c++) {
      const plane = source.length === count ? source : source.subarray(c * count, (c + 1) * count);
      const resized = toBytes(resize(plane, h, w, nh, nw));
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const sy = y - dy, sx = x - dx;
          if (sy >= 0 && sy < nh && sx >= 0 && sx < nw)
            out[c * H * W + y * W + x] = resized[sy * nw + sx];
        }
    }
    return {pixels: out, channels: C, height: H, width: W, inverted: false};
  }

  // any other picture: the whole of it resized, turned to the training data's polarity
  function resized(image, h, w, size, channels, darkBackground) {
    const [inverted] = background(image, h, w);
    const turned = image.map(v => (inverted !== darkBackground ? v : f32(1 - v)));
    const plane = toBytes(resize(turned, h, w, size[0], size[1])), n = size[0] * size[1];
    const pixels = new Uint8Array(channels * n);
    for (let c = 0; c < channels; c++) pixels.set(plane, c * n);
    return {pixels, channels, height: size[0], width: size[1], inverted};
  }

  // RGBA bytes of a picture -> the model's input, as the model's `prepare` says
  function input(rgba, h, w, prepare) {
    const count = h * w;
    if (prepare.how === "digit") return digit(grey(rgba, count), h, w);
    if (prepare.how === "policy") return byPolicy(rgb(rgba, count), count, h, w, prepare.policy);
    return resized(grey(rgba, count), h, w, prepare.size, prepare.channels, prepare.dark);
  }

  return {input, digit, byPolicy, resized, grey, resize};
})();
