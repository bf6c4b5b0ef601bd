// Posters. A title with artwork from the metadata provider (`posterUrl`, from `marquee import
// tmdb`) shows that image; every title also gets an SVG drawn from a hash of its id and name —
// colours from its genres, a motif from the hash, the title set in type — shown while the image
// loads and kept when there is none or it fails to load.

const PALETTE = {
  Action: ['#ff5a36', '#5c0d02'],
  Adventure: ['#f7a440', '#6b2d0c'],
  Animation: ['#48cae4', '#4a0a8c'],
  "Children's": ['#ffd166', '#0b8a6a'],
  Comedy: ['#ffc53d', '#c2410c'],
  Crime: ['#5b7aa6', '#0b132b'],
  Documentary: ['#a3b1c6', '#1f2235'],
  Drama: ['#a66cff', '#2a0652'],
  Fantasy: ['#d39bff', '#3b0f70'],
  'Film-Noir': ['#c9ccd1', '#0d0d0f'],
  Horror: ['#c1121f', '#120000'],
  Musical: ['#ff70a6', '#5f1d9c'],
  Mystery: ['#4f7cac', '#111a2e'],
  Romance: ['#ff8fab', '#8c0f3a'],
  'Sci-Fi': ['#1fd1f9', '#03045e'],
  Thriller: ['#3fa37a', '#06140f'],
  War: ['#8c916f', '#1f2a12'],
  Western: ['#e0a86b', '#5a3210'],
};
const FALLBACK = ['#7d8597', '#1c1f26'];

/** FNV-1a, 32 bit. */
export function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** "Princess Bride, The" → "The Princess Bride" (MovieLens files articles at the end). */
export function displayName(name) {
  const m = /^(.*), (The|A|An|Les|La|Le|Il|Das|Der|Die|El|L')( \(.*\))?$/.exec(name ?? '');
  if (!m) return name ?? '';
  return `${m[2]}${m[2].endsWith("'") ? '' : ' '}${m[1]}${m[3] ?? ''}`;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function wrap(text, maxChars, maxLines) {
  const words = text.split(/\s+/).filter(Boolean);
  const lines = [];
  let line = '';
  for (const w of words) {
    const next = line ? `${line} ${w}` : w;
    if (next.length > maxChars && line) {
      lines.push(line);
      line = w;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    const kept = lines.slice(0, maxLines);
    kept[maxLines - 1] = `${kept[maxLines - 1].replace(/[\s,:;.-]+$/, '')}…`;
    return kept;
  }
  return lines.map((l) => (l.length > maxChars + 3 ? `${l.slice(0, maxChars + 2)}…` : l));
}

function motif(kind, h, light) {
  const r = (n, m) => ((h >>> n) % m);
  switch (kind) {
    case 0: { // rising sun: concentric circles
      const cx = 40 + r(3, 120), cy = 70 + r(7, 60);
      return [90, 66, 44, 24].map((rad, i) =>
        `<circle cx="${cx}" cy="${cy}" r="${rad}" fill="${light}" opacity="${0.07 + i * 0.05}"/>`).join('');
    }
    case 1: { // diagonal bands
      const step = 26 + r(5, 20);
      let out = '';
      for (let x = -300; x < 300; x += step * 2) {
        out += `<path d="M${x} 300 L${x + 300} 0 L${x + 300 + step} 0 L${x + step} 300Z" fill="${light}" opacity="0.08"/>`;
      }
      return out;
    }
    case 2: { // one bold ring
      const cx = 60 + r(4, 80), cy = 60 + r(9, 70), rad = 46 + r(13, 30);
      return `<circle cx="${cx}" cy="${cy}" r="${rad}" fill="none" stroke="${light}" stroke-width="${10 + r(2, 14)}" opacity="0.22"/>`
        + `<circle cx="${cx}" cy="${cy}" r="${rad / 3}" fill="${light}" opacity="0.18"/>`;
    }
    case 3: { // dot grid
      let out = '';
      const gap = 16 + r(6, 8);
      for (let y = 14; y < 170; y += gap) {
        for (let x = 14; x < 200; x += gap) {
          out += `<circle cx="${x}" cy="${y}" r="${1.5 + ((x * y + h) % 3)}" fill="${light}" opacity="0.16"/>`;
        }
      }
      return out;
    }
    default: { // mountain ridges
      const a = 90 + r(3, 60), b = 60 + r(8, 70);
      return `<path d="M0 190 L${a - 40} ${b + 40} L${a} ${b + 70} L${a + 50} ${b} L200 ${b + 60} L200 300 L0 300Z" fill="${light}" opacity="0.14"/>`
        + `<path d="M0 230 L60 170 L110 205 L160 150 L200 190 L200 300 L0 300Z" fill="#000" opacity="0.25"/>`;
    }
  }
}

let serial = 0;
const WIDTH = 168; // text width inside the frame

/** An inline SVG poster (2:3) for a title: { id, name, year, genres }. */
export function posterSvg(title) {
  const name = displayName(title.name);
  const genres = title.genres?.length ? title.genres : ['Unknown'];
  const h = hash(`${title.id}|${title.name}`);
  const [light, dark] = PALETTE[genres[0]] ?? FALLBACK;
  const second = genres.length > 1 ? (PALETTE[genres[1 + (h % (genres.length - 1))]] ?? FALLBACK)[1] : dark;
  const angle = h % 360;
  const id = `p${++serial}`;
  const len = name.length;
  const [size, chars] = len <= 9 ? [29, 9] : len <= 24 ? [22, 12] : len <= 44 ? [18, 14] : [15, 17];
  const lines = wrap(name, chars, 5);
  const lh = size * 1.08;
  const top = 272 - lines.length * lh;
  // Georgia bold averages ~0.6em a glyph: squeeze a line that would not fit the frame.
  const fit = (line) => (line.length * size * 0.6 > WIDTH ? ` textLength="${WIDTH}" lengthAdjust="spacingAndGlyphs"` : '');
  const text = lines.map((l, i) =>
    `<tspan x="16" y="${(top + (i + 1) * lh).toFixed(1)}"${fit(l)}>${esc(l)}</tspan>`).join('');
  const two = genres.slice(0, 2).join(' · ');
  const label = (two.length <= 20 ? two : genres[0]).toUpperCase();
  return `<svg class="poster-art" viewBox="0 0 200 300" role="img" aria-label="${esc(name)} poster" preserveAspectRatio="xMidYMid slice" xmlns="http://www.w3.org/2000/svg">
<defs>
<linearGradient id="${id}g" gradientTransform="rotate(${angle} .5 .5)"><stop offset="0" stop-color="${light}"/><stop offset=".55" stop-color="${dark}"/><stop offset="1" stop-color="${second}"/></linearGradient>
<linearGradient id="${id}s" x1="0" y1="0" x2="0" y2="1"><stop offset=".35" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity=".78"/></linearGradient>
</defs>
<rect width="200" height="300" fill="url(#${id}g)"/>
${motif(h % 5, h, light)}
<rect width="200" height="300" fill="url(#${id}s)"/>
<rect x="7" y="7" width="186" height="286" fill="none" stroke="#fff" stroke-opacity=".16"/>
<text x="16" y="30" fill="#fff" fill-opacity=".82" font-family="system-ui,sans-serif" font-size="11" font-weight="600" letter-spacing="1.6">${esc(label)}</text>
<text fill="#fff" font-family="Georgia,'DejaVu Serif',serif" font-weight="700" font-size="${size}" letter-spacing="-.3">${text}</text>
<text x="16" y="288" fill="#fff" fill-opacity=".7" font-family="system-ui,sans-serif" font-size="11" letter-spacing="2">${esc(title.year ?? '')}</text>
</svg>`;
}

/**
 * Fills `container` with the title's poster: the generated SVG at once, the real image (when
 * `url` is given) laid over it once it has loaded. The image is only swapped in after `load`,
 * so a slow or broken image server never leaves an empty frame.
 */
export function fillPoster(container, title, url = title.posterUrl) {
  container.innerHTML = posterSvg(title);
  if (!url) return container;
  const img = document.createElement('img');
  img.className = 'poster-img';
  img.alt = '';
  img.decoding = 'async';
  img.loading = 'lazy';
  // The image server learns nothing about the page that shows its image.
  img.referrerPolicy = 'no-referrer';
  img.addEventListener('load', () => {
    img.classList.add('loaded');
    container.dataset.poster = 'image';
  }, { once: true });
  img.addEventListener('error', () => img.remove(), { once: true });
  container.dataset.poster = 'svg';
  img.src = url;
  container.append(img);
  return container;
}
