// One uPlot chart: time on x, one or more lines, and vertical markers
// (deploys, scaling, wakes, restarts, alerts) drawn over the plot area.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Marker } from '../../src/web/types.js';
import { formatClock } from '../lib/format.js';
import { hasPoints, type Columns } from '../lib/series.js';

export const MARKER_COLORS: Record<Marker['kind'], string> = {
  deploy: '#1f6feb',
  scale: '#8250df',
  wake: '#1a7f37',
  restart: '#bf8700',
  alert: '#cf222e',
};

const LINE_COLORS = ['#0969da', '#d1242f', '#1a7f37', '#8250df', '#bc4c00', '#0550ae', '#a40e26', '#116329'];

/** "23:05" on a minute grid, "23:05:30" when the grid is finer. */
function clockLabel(sec: number, stepSec: number): string {
  const text = formatClock(sec * 1000);
  return stepSec > 0 && stepSec < 60 ? text : text.slice(0, 5);
}

interface Props {
  title: string;
  columns: Columns;
  labels: string[];
  format: (v: number | null) => string;
  /** The y axis reaches at least this (an idle service's chart is not a magnified noise of 0.3 B/s). */
  floor: number;
  markers: Marker[];
  fromMs: number;
  toMs: number;
}

/** Draws the markers as dashed vertical lines with their kind's colour (canvas, so they follow zoom and resize). */
function markersPlugin(getMarkers: () => Marker[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u: uPlot) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.lineWidth = 2 * uPlot.pxRatio;
        ctx.setLineDash([5 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
        for (const m of getMarkers()) {
          const x = Math.round(u.valToPos(m.at / 1000, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = MARKER_COLORS[m.kind];
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
        }
        ctx.restore();
      },
    },
  };
}

export function Chart({ title, columns, labels, format, floor, markers, fromMs, toMs }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const markersRef = useRef(markers);
  markersRef.current = markers;
  const rangeRef = useRef<[number, number]>([fromMs / 1000, toMs / 1000]);
  rangeRef.current = [fromMs / 1000, toMs / 1000];
  const data = [columns.t.map((t) => t / 1000), ...columns.lines] as uPlot.AlignedData;
  const shape = labels.join('\n');

  // (Re)create when the lines change (another instance, per-instance view); otherwise only new data.
  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: 180,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: { x: { time: true, range: () => rangeRef.current }, y: { range: (_u, _min, max) => [0, Math.max(max * 1.1, floor)] } },
      // 24-hour UTC times, as the CLI and the event list print them (uPlot's default is local am/pm).
      axes: [{ space: 80, values: (_u, splits) => splits.map((v) => clockLabel(v, (splits[1] ?? v) - (splits[0] ?? v))) }, { values: (_u, splits) => splits.map((v) => format(v)), size: 70 }],
      series: [{}, ...labels.map((label, i) => ({ label, stroke: LINE_COLORS[i % LINE_COLORS.length], width: 1.5, value: (_u: uPlot, v: number | null) => format(v), spanGaps: false }))],
      legend: { show: true },
      plugins: [markersPlugin(() => markersRef.current)],
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(280, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData(data);
  });

  const points = columns.lines.reduce((n, line) => n + line.filter((v) => v != null).length, 0);
  return (
    <figure class="chart" data-chart={title} data-points={points}>
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-plot" role="img" aria-label={`${title} over time: ${points} readings`} />
      {!hasPoints(columns) && <p class="muted empty">No readings in this window yet.</p>}
    </figure>
  );
}
