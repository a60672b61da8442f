/**
 * Small SVG charts. No chart library and no inline styles (the console's CSP allows styles
 * from our origin only): geometry goes in SVG attributes, colours in styles.css classes.
 * Every chart carries a text equivalent (a title and a description) for screen readers.
 */
import { type ReactNode, useId } from 'react';

export interface Bar {
  readonly label: string;
  readonly value: number;
  /** A second value drawn as a thinner bar over the first (e.g. p90 behind a median). */
  readonly secondary?: number | null;
  readonly tone?: 'normal' | 'warn' | 'danger';
  readonly note?: string;
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 1 : 0));

/**
 * The figure around a chart: its caption, and an SVG labelled by that caption and a text
 * description (or a note when there is no data).
 */
function ChartFigure({
  title,
  description,
  width,
  height,
  empty = false,
  children,
}: {
  title: string;
  description: string;
  width: number;
  height: number;
  empty?: boolean;
  children: ReactNode;
}) {
  const id = useId();
  return (
    <figure className="chart">
      <figcaption id={`${id}-t`}>{title}</figcaption>
      {empty ? (
        <p className="muted">No data in this window.</p>
      ) : (
        <svg
          className="chart-svg"
          viewBox={`0 0 ${width} ${height}`}
          width="100%"
          role="img"
          aria-labelledby={`${id}-t ${id}-d`}
        >
          <title>{title}</title>
          <desc id={`${id}-d`}>{description}</desc>
          {children}
        </svg>
      )}
    </figure>
  );
}

/** Horizontal bars, one per label, scaled to the largest value (or `max`). */
export function BarChart({
  title,
  bars,
  unit = '',
  max,
  secondaryLabel,
}: {
  title: string;
  bars: readonly Bar[];
  unit?: string;
  max?: number;
  secondaryLabel?: string;
}) {
  const width = 520;
  const labelWidth = 170;
  const row = 26;
  const height = Math.max(1, bars.length) * row + 8;
  const top = Math.max(max ?? 0, ...bars.map((b) => Math.max(b.value, b.secondary ?? 0)), Number.MIN_VALUE);
  const scale = (v: number) => ((width - labelWidth - 70) * v) / top;
  const description = bars
    .map(
      (b) =>
        `${b.label}: ${fmt(b.value)}${unit}${
          b.secondary != null && secondaryLabel ? `, ${secondaryLabel} ${fmt(b.secondary)}${unit}` : ''
        }`,
    )
    .join('; ');
  return (
    <ChartFigure
      title={title}
      description={description}
      width={width}
      height={height}
      empty={bars.length === 0}
    >
      {bars.map((b, i) => {
        const y = i * row + 4;
        return (
          <g key={b.label} data-bar={b.label}>
            <text className="chart-label" x={labelWidth - 8} y={y + 15} textAnchor="end">
              {b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label}
            </text>
            {b.secondary != null && (
              <rect
                className="chart-bar-secondary"
                x={labelWidth}
                y={y + 2}
                width={Math.max(1, scale(b.secondary))}
                height={row - 8}
                rx={2}
              />
            )}
            <rect
              className={`chart-bar chart-bar-${b.tone ?? 'normal'}`}
              x={labelWidth}
              y={y + 6}
              width={Math.max(b.value > 0 ? 2 : 0, scale(b.value))}
              height={row - 16}
              rx={2}
            />
            <text
              className="chart-value"
              x={labelWidth + Math.max(scale(b.value), scale(b.secondary ?? 0)) + 6}
              y={y + 15}
            >
              {fmt(b.value)}
              {unit}
              {b.secondary != null && secondaryLabel ? ` / ${fmt(b.secondary)}${unit}` : ''}
              {b.note ? ` ${b.note}` : ''}
            </text>
          </g>
        );
      })}
    </ChartFigure>
  );
}

/** 24 columns, one per hour of the day, with working hours shaded. */
export function HourChart({
  title,
  counts,
  workStart = 8,
  workEnd = 18,
}: {
  title: string;
  counts: readonly number[];
  workStart?: number;
  workEnd?: number;
}) {
  const width = 520;
  const height = 150;
  const base = 120;
  const col = (width - 20) / 24;
  const top = Math.max(1, ...counts);
  const description = counts.map((n, h) => `${String(h).padStart(2, '0')}:00 ${n}`).join(', ');
  return (
    <ChartFigure title={title} description={description} width={width} height={height}>
      <rect
        className="chart-hours"
        x={10 + workStart * col}
        y={0}
        width={(workEnd - workStart) * col}
        height={base}
      />
      {counts.map((n, h) => {
        const hgt = (n / top) * (base - 14);
        const out = h < workStart || h >= workEnd;
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: the hour is the identity
          <g key={h}>
            <rect
              className={`chart-bar ${out ? 'chart-bar-warn' : 'chart-bar-normal'}`}
              x={10 + h * col + 2}
              y={base - hgt}
              width={col - 4}
              height={hgt}
              rx={1}
            />
            {h % 3 === 0 && (
              <text className="chart-label" x={10 + h * col + col / 2} y={base + 16} textAnchor="middle">
                {String(h).padStart(2, '0')}
              </text>
            )}
          </g>
        );
      })}
      <line className="chart-axis" x1={10} x2={width - 10} y1={base} y2={base} />
    </ChartFigure>
  );
}
