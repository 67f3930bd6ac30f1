// Charts drawn by uPlot, each in a <figure> with a caption, a text summary for screen readers and
// a table of the numbers behind it (the canvas alone says nothing to someone who cannot see it).

import uPlot from "../vendor/uPlot.esm.js";
import { h, replace, table, row } from "./dom.js";

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

const SERIES_COLORS = ["--series-1", "--series-2", "--series-3", "--series-4", "--series-5"];

/**
 * A chart of one x series and several y series.
 *   x: "time" (Unix seconds, chain time) or "seconds" (a duration axis, for histograms)
 *   series: [{label, kind: "bars" | "line", color?: a CSS custom property, format?}]
 *   step: width of one bucket (x units), so bars are as wide as their bucket
 *   summarize(x, ys): a sentence describing the data, for the figure's text alternative
 */
export class Chart {
  constructor({ title, x = "time", series, step = 60, height = 220, yFormat = (v) => String(v), xFormat = null, summarize, yRange = null }) {
    this.options = { x, series, step, height, yFormat, xFormat, yRange };
    this.summarize = summarize;
    this.plot = h("div", { class: "plot", role: "img", "aria-label": `${title}: no data yet` });
    this.numbers = h("div", {});
    this.details = h("details", { on: { toggle: () => this.renderTable() } }, h("summary", {}, "Show the numbers"), this.numbers);
    this.element = h("figure", { class: "chart" }, h("figcaption", {}, title), this.plot, this.details);
    this.title = title;
    this.chart = null;
    this.data = null;
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.element);
  }

  width() {
    return Math.max(200, this.plot.clientWidth || this.element.clientWidth - 20 || 300);
  }

  height() {
    return window.matchMedia("(max-width: 40rem)").matches ? Math.round(this.options.height * 0.8) : this.options.height;
  }

  fit() {
    if (this.chart) this.chart.setSize({ width: this.width(), height: this.height() });
  }

  build() {
    const { x, series, step, yFormat, xFormat, yRange } = this.options;
    const text = cssColor("--text");
    const grid = cssColor("--grid");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const half = step / 2;
    const barSeries = series.filter((item) => item.kind === "bars");
    const xScale = x === "time"
      ? { time: true, range: (u, min, max) => [min - half, max + half] }
      : { time: false, range: (u, min, max) => [min, max + step] };
    const options = {
      width: this.width(),
      height: this.height(),
      scales: { x: xScale, y: { range: yRange ?? ((u, min, max) => [0, Math.max(1, max * 1.1)]) } },
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      axes: [
        { ...axis, ...(xFormat ? { values: (u, values) => values.map(xFormat) } : {}) },
        { ...axis, size: 64, values: (u, values) => values.map(yFormat) },
      ],
      series: [
        { value: x === "time" ? "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" : (u, v) => (v === null ? "—" : xFormat ? xFormat(v) : v) },
        ...series.map((item, index) => {
          const color = cssColor(item.color ?? SERIES_COLORS[index % SERIES_COLORS.length]);
          const bars = item.kind === "bars";
          return {
            label: item.label,
            stroke: color,
            width: bars ? 1 : 2,
            fill: bars ? `${color}99` : undefined,
            ...(bars ? { points: { show: false }, paths: this.barPaths(barSeries.indexOf(item), barSeries.length) } : {}),
            value: (u, v) => (v === null || v === undefined ? "—" : (item.format ?? yFormat)(v)),
          };
        }),
      ],
    };
    this.chart = new uPlot(options, this.data, this.plot);
  }

  /** Bars of one series: a lone series fills its bucket; two stand side by side in it. */
  barPaths(index, count) {
    const centred = this.options.x === "time";
    if (count === 1) return uPlot.paths.bars({ size: [0.8, 48], align: centred ? 0 : 1 });
    const align = index === 0 ? -1 : 1;
    return uPlot.paths.bars({ size: [0.4, 24], align: centred ? align : 1 });
  }

  /** New data: `xs` and one array per series (null for a gap). */
  update(xs, ys) {
    this.data = [xs, ...ys];
    const empty = xs.length === 0;
    this.plot.setAttribute("aria-label", empty ? `${this.title}: no data yet` : `${this.title}. ${this.summarize ? this.summarize(xs, ys) : ""}`);
    if (empty) {
      this.chart?.destroy();
      this.chart = null;
      replace(this.plot, h("p", { class: "empty" }, "Nothing to show yet."));
    } else if (this.chart) {
      this.chart.setData(this.data);
    } else {
      this.plot.replaceChildren();
      this.build();
    }
    this.renderTable();
  }

  renderTable() {
    if (!this.details.open || !this.data) return;
    const [xs, ...ys] = this.data;
    const { x, series, yFormat, xFormat } = this.options;
    const columns = [{ title: x === "time" ? "Time" : "From" }, ...series.map((item) => ({ title: item.label, num: true }))];
    const label = (value) => (x === "time" ? new Date(value * 1000).toLocaleString() : xFormat ? xFormat(value) : value);
    const rows = xs.map((value, i) => row([label(value), ...ys.map((values, j) => ({
      value: values[i] === null || values[i] === undefined ? "—" : (series[j].format ?? yFormat)(values[i]), num: true,
    }))]));
    replace(this.numbers, table({ columns, rows, label: `${this.title}: the numbers` }).wrap);
  }

  destroy() {
    this.resize.disconnect();
    this.chart?.destroy();
    this.chart = null;
  }
}
