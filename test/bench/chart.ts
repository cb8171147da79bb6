// A grouped bar chart as SVG: one group per workload, one bar per configuration, each group scaled
// to its own fastest configuration so that workloads of very different speeds read side by side.
type Summary = Record<string, Record<string, { rps: number }>>;

const COLORS = ['#9aa5b1', '#f0a202', '#2a9d8f', '#264653', '#e76f51'];
const BAR = 26;
const GAP = 6;
const GROUP_GAP = 34;
const HEIGHT = 220;
const TOP = 48;
const LEFT = 20;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function renderChart(summary: Summary, configs: readonly string[], title: string): string {
  const groups = Object.entries(summary);
  const groupWidth = configs.length * (BAR + GAP) - GAP;
  const width = LEFT * 2 + groups.length * (groupWidth + GROUP_GAP) - GROUP_GAP;
  const height = TOP + HEIGHT + 70;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  configs.forEach((config, i) => {
    const x = LEFT + i * 90;
    parts.push(`<rect x="${x}" y="30" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="${x + 14}" y="39">${escapeXml(config)}</text>`);
  });
  groups.forEach(([workload, byConfig], g) => {
    const x0 = LEFT + g * (groupWidth + GROUP_GAP);
    const max = Math.max(...configs.map((c) => byConfig[c]?.rps ?? 0), 1);
    configs.forEach((config, i) => {
      const rps = byConfig[config]?.rps ?? 0;
      const h = (rps / max) * HEIGHT;
      const x = x0 + i * (BAR + GAP);
      const y = TOP + HEIGHT - h;
      parts.push(
        `<rect x="${x}" y="${y.toFixed(1)}" width="${BAR}" height="${h.toFixed(1)}" fill="${COLORS[i % COLORS.length]}"/>`,
      );
      parts.push(
        `<text x="${x + BAR / 2}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="9">${rps >= 10_000 ? `${(rps / 1000).toFixed(0)}k` : rps.toFixed(0)}</text>`,
      );
    });
    parts.push(
      `<text x="${x0 + groupWidth / 2}" y="${TOP + HEIGHT + 18}" text-anchor="middle" font-size="12">${escapeXml(workload)}</text>`,
    );
  });
  parts.push(`<line x1="${LEFT}" y1="${TOP + HEIGHT}" x2="${width - LEFT}" y2="${TOP + HEIGHT}" stroke="#333"/>`);
  parts.push(
    `<text x="${LEFT}" y="${height - 12}" fill="#555">Bars: median requests per second; each workload scaled to its fastest configuration.</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
