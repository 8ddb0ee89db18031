/**
 * The report's plotting code, run by the browser: it draws every `<figure class="plot">` from the
 * JSON in its `data-plot` attribute as an SVG line chart (axes, ticks, legend), with no library and
 * no network, so the report is one self-contained file. A drawn figure gets `data-drawn` (its point
 * count), which the headless-Chromium test reads.
 */
export const PLOT_SCRIPT = `
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function ticks(lo, hi, n) {
    var span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function ok(p) { return typeof p[0] === 'number' && typeof p[1] === 'number' && isFinite(p[0]) && isFinite(p[1]); }
  function fmt(v) { return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-2) ? v.toExponential(1) : String(+v.toPrecision(4)); }
  function draw(fig) {
    var spec = JSON.parse(fig.getAttribute('data-plot'));
    var W = 640, H = 320, L = 60, R = 150, T = 28, B = 44;
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' }, fig);
    el('title', {}, svg).textContent = spec.title;
    var xs = [], ys = [], points = 0;
    spec.series.forEach(function (s) { s.points.forEach(function (p) { if (ok(p)) { xs.push(p[0]); ys.push(p[1]); } }); });
    if (xs.length === 0) { fig.setAttribute('data-drawn', '0'); return; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (spec.yMin !== undefined) y0 = Math.max(y0, spec.yMin);
    if (spec.yMax !== undefined) y1 = Math.min(y1, spec.yMax);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { y0 -= 1; y1 += 1; }
    var pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    function sx(v) { return L + (v - x0) / (x1 - x0) * (W - L - R); }
    function sy(v) { return T + (1 - (Math.min(Math.max(v, y0), y1) - y0) / (y1 - y0)) * (H - T - B); }
    el('text', { x: L, y: 16, 'class': 'ptitle' }, svg).textContent = spec.title;
    var axes = el('g', { 'class': 'axes' }, svg);
    el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B }, axes);
    el('line', { x1: L, y1: T, x2: L, y2: H - B }, axes);
    var xt = spec.xTicks ? spec.xTicks.map(function (t) { return t[0]; }) : ticks(x0, x1, 6);
    xt.forEach(function (v, i) {
      el('line', { x1: sx(v), y1: H - B, x2: sx(v), y2: H - B + 4 }, axes);
      el('text', { x: sx(v), y: H - B + 16, 'text-anchor': 'middle' }, axes).textContent = spec.xTicks ? spec.xTicks[i][1] : fmt(v);
    });
    ticks(y0, y1, 5).forEach(function (v) {
      el('line', { x1: L, y1: sy(v), x2: W - R, y2: sy(v), 'class': 'grid' }, axes);
      el('text', { x: L - 6, y: sy(v) + 4, 'text-anchor': 'end' }, axes).textContent = fmt(v);
    });
    el('text', { x: (L + W - R) / 2, y: H - 8, 'text-anchor': 'middle' }, axes).textContent = spec.xLabel;
    el('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')' }, axes).textContent = spec.yLabel;
    spec.series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      var pts = s.points.filter(ok);
      points += pts.length;
      var d = pts.map(function (p, j) { return (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1); }).join(' ');
      el('path', { d: d, fill: 'none', stroke: color, 'stroke-width': s.width || 1.6, 'stroke-dasharray': s.dashed ? '5 4' : 'none', 'class': 'series' }, svg);
      if (s.markers) pts.forEach(function (p) { el('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: color }, svg); });
      var ly = T + 6 + i * 16;
      el('line', { x1: W - R + 10, y1: ly, x2: W - R + 30, y2: ly, stroke: color, 'stroke-width': 2, 'stroke-dasharray': s.dashed ? '5 4' : 'none' }, svg);
      el('text', { x: W - R + 34, y: ly + 4, 'class': 'legend' }, svg).textContent = s.name;
    });
    fig.setAttribute('data-drawn', String(points));
  }
  document.querySelectorAll('figure.plot').forEach(draw);
  document.body.setAttribute('data-plots-drawn', String(document.querySelectorAll('figure.plot[data-drawn]').length));
})();
`;
