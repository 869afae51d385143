/** One line of a chart. */
export interface Series {
  name: string;
  points: Array<[number, number]>;
}

/** Options of lineChart. */
export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Log-scale x axis (batch sizes, concurrency). */
  logX?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A small self-contained SVG line chart. */
export function lineChart(series: Series[], options: ChartOptions): string {
  const [w, h, left, right, top, bottom] = [640, 400, 70, 150, 40, 50];
  const all = series.flatMap((s) => s.points);
  const fx = (x: number) => (options.logX ? Math.log2(Math.max(x, 1)) : x);
  const xs = all.map(([x]) => fx(x));
  const ys = all.map(([, y]) => y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  const y1 = Math.max(...ys, 0) * 1.1 || 1;
  const px = (x: number) => left + ((fx(x) - x0) / (x1 - x0 || 1)) * (w - left - right);
  const py = (y: number) => h - bottom - (y / y1) * (h - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`,
    `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="black"/>`,
    `<text x="${(w - right + left) / 2}" y="${h - 10}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text x="15" y="${h / 2}" text-anchor="middle" transform="rotate(-90 15 ${h / 2})">${esc(options.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (y1 * i) / 4;
    parts.push(
      `<text x="${left - 5}" y="${py(y) + 4}" text-anchor="end">${Number(y.toPrecision(3))}</text>`,
    );
    parts.push(`<line x1="${left}" y1="${py(y)}" x2="${w - right}" y2="${py(y)}" stroke="#eee"/>`);
  }
  for (const x of [...new Set(all.map(([x]) => x))]) {
    parts.push(`<text x="${px(x)}" y="${h - bottom + 15}" text-anchor="middle">${x}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] ?? 'black';
    const pts = s.points.map(([x, y]) => `${px(x)},${py(y)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
    for (const [x, y] of s.points)
      parts.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${color}"/>`);
    parts.push(
      `<text x="${w - right + 10}" y="${top + 15 + i * 16}" fill="${color}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
