"""Self-contained HTML views: inline CSS and inline JS only — no external scripts, fonts or styles, so a saved file
opens offline and renders the same everywhere.

``saliency_fragment`` is the coloured text with its legend (no JS; the Streamlit app embeds it). ``saliency_page``
and ``attention_page`` are whole pages for download.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from shieldkit.debugger.base import SIGN_CONVENTION, UNSIGNED_NOTE

if TYPE_CHECKING:
    from shieldkit.debugger.aggregation import Segment
    from shieldkit.debugger.attention import AttentionMaps
    from shieldkit.debugger.results import SaliencyResult

POSITIVE = (22, 163, 74)  # green: raised the target
NEGATIVE = (220, 38, 38)  # red: lowered the target
MAGNITUDE = (124, 58, 237)  # purple: unsigned magnitude

STYLE = """
.sk-view{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;line-height:1.9}
.sk-text{white-space:pre-wrap;word-wrap:break-word;font-size:15px;padding:10px 12px;border:1px solid #ddd;
  border-radius:6px;background:#fff}
.sk-token{border-radius:3px;padding:1px 0}
.sk-token:hover{outline:1px solid #555}
.sk-control{font-size:11px;color:#666;border:1px dashed #aaa;padding:0 3px;margin:0 2px}
.sk-target{border-bottom:3px solid #2563eb}
.sk-legend{display:flex;flex-wrap:wrap;align-items:center;gap:8px;font-size:13px;color:#333;margin:6px 0}
.sk-bar{display:inline-block;width:160px;height:12px;border:1px solid #ccc;border-radius:2px}
.sk-meta{font-size:13px;color:#444;margin:4px 0}
table.sk-table{border-collapse:collapse;font-size:13px;margin-top:12px}
table.sk-table th,table.sk-table td{border:1px solid #ddd;padding:3px 8px;text-align:left}
table.sk-table th{background:#f3f4f6;cursor:pointer;user-select:none}
td.sk-num{text-align:right;font-variant-numeric:tabular-nums}
"""


def colour(score: float, scale: float, signed: bool) -> str:
    """Background for a score: intensity |score| / scale, green for positive, red for negative (purple if unsigned)."""
    strength = min(abs(score) / scale, 1.0) if scale > 0 else 0.0
    rgb = MAGNITUDE if not signed else (POSITIVE if score >= 0 else NEGATIVE)
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.08 + 0.82 * strength:.3f})" if strength > 0 else "transparent"


def legend(signed: bool, scale: float, note: bool = True) -> str:
    """The colour bar with its end values; ``note`` adds the sign convention in words (pages; the app states it
    once for all its views)."""
    if signed:
        bar = (f"linear-gradient(to right,rgb{NEGATIVE},rgba({NEGATIVE[0]},{NEGATIVE[1]},{NEGATIVE[2]},0.08),"
               f"#fff,rgba({POSITIVE[0]},{POSITIVE[1]},{POSITIVE[2]},0.08),rgb{POSITIVE})")
        ends = f"<span>−{scale:.3g} lowered</span><span class='sk-bar' style='background:{bar}'></span><span>raised +{scale:.3g}</span>"
        text = SIGN_CONVENTION
    else:
        bar = f"linear-gradient(to right,#fff,rgb{MAGNITUDE})"
        ends = f"<span>0</span><span class='sk-bar' style='background:{bar}'></span><span>{scale:.3g}</span>"
        text = UNSIGNED_NOTE
    words = f"<span>{html.escape(text)}</span>" if note else ""
    return f"<div class='sk-legend' data-sign='{'signed' if signed else 'unsigned'}'>{ends}{words}</div>"


def saliency_fragment(result: SaliencyResult, granularity: str = "tokens", pattern: str | None = None, *,
                      show_control: bool = True, scale: float | None = None, note: bool = True) -> str:
    """The coloured text and its legend, with a <style> block; no scripts. ``scale``: the |score| of full colour
    (default: this result's largest; pass one value to views that are compared side by side)."""
    segments = result.segments(granularity, pattern)
    if scale is None:
        scale = segment_scale(segments)
    target = set(range(*result.highlight)) if result.highlight else set()
    parts, cursor = [], 0
    for segment in segments:
        if segment.kind == "outside" or (segment.kind == "control" and not show_control):
            continue
        if segment.kind != "control" and segment.start > cursor:
            parts.append(html.escape(result.text[cursor : segment.start]))
        parts.append(_segment_html(segment, result, scale, bool(target & set(segment.tokens))))
        cursor = max(cursor, segment.end)
    if cursor < len(result.text):
        parts.append(html.escape(result.text[cursor:]))
    meta = (f"<div class='sk-meta'><b>{html.escape(result.method_label)}</b> · target: "
            f"{html.escape(result.target_description)} = {result.target_value:.4g}</div>")
    return (f"<style>{STYLE}</style><div class='sk-view'>{meta}{legend(result.signed, scale, note)}"
            f"<div class='sk-text' data-granularity='{html.escape(granularity)}'>{''.join(parts)}</div></div>")


def segment_scale(segments: list[Segment]) -> float:
    """The largest |score| among the text's segments: the full-colour end of the legend."""
    return max((abs(s.score) for s in segments if s.kind in ("text", "gap")), default=0.0)


def _segment_html(segment: Segment, result: SaliencyResult, scale: float, in_target: bool) -> str:
    classes = "sk-token" + (" sk-control" if segment.kind == "control" else "") + (" sk-target" if in_target else "")
    pieces = ", ".join(repr(result.tokens[i].piece) for i in segment.tokens[:8])
    title = html.escape(f"{segment.score:+.4f}  [{pieces}{', …' if len(segment.tokens) > 8 else ''}]", quote=True)
    text = segment.text
    lead = ""
    if segment.kind != "control" and len(segment.tokens) > 1:
        stripped = text.lstrip()
        lead, text = html.escape(text[: len(text) - len(stripped)]), stripped
    style = f"background:{colour(segment.score, scale, result.signed)}"
    return (f"{lead}<span class='{classes}' style='{style}' data-score='{segment.score:.6g}' "
            f"data-tokens='{','.join(map(str, segment.tokens))}' title='{title}'>{html.escape(text)}</span>")


_SORT_JS = """
document.querySelectorAll('table.sk-table').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var dir = th.dataset.dir === 'desc' ? 1 : -1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      rows.sort(function(a, b){
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
        return dir * String(x).localeCompare(String(y));
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""


def saliency_page(result: SaliencyResult, granularity: str = "tokens", pattern: str | None = None, *,
                  title: str | None = None) -> str:
    """A whole HTML page: facts, heatmap with legend, and a table sortable by clicking its headers."""
    segments = [s for s in result.segments(granularity, pattern) if s.kind != "outside"]
    rows = "".join(
        f"<tr><td class='sk-num' data-value='{rank}'>{rank}</td>"
        f"<td data-value='{html.escape(s.text, quote=True)}'>{html.escape(repr(s.text))}</td>"
        f"<td class='sk-num' data-value='{s.score:.6g}'>{s.score:+.4f}</td>"
        f"<td class='sk-num' data-value='{abs(s.score):.6g}'>{abs(s.score):.4f}</td>"
        f"<td data-value='{s.kind}'>{s.kind}</td></tr>"
        for rank, s in enumerate(segments)
    )
    facts = [f"model: {result.model}", f"method: {result.method_label} {json.dumps(result.config)}",
             f"granularity: {granularity}" + (f" /{pattern}/" if pattern else ""), f"computed in {result.seconds:.2f} s"]
    if result.completeness:
        c = result.completeness
        facts.append(f"completeness: Σ attributions {c.attribution_sum:.4f} vs f(x) − f(baseline) "
                     f"{c.target_value - c.baseline_value:.4f} (gap {c.gap:+.4f}, {100 * c.relative_gap:.1f}%)")
    heading = html.escape(title or f"Saliency: {result.target_description}")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{heading}</title>"
        f"<style>body{{margin:24px;max-width:1100px}}{STYLE}</style></head><body class='sk-view'>"
        f"<h2>{heading}</h2>" + "".join(f"<div class='sk-meta'>{html.escape(f)}</div>" for f in facts)
        + saliency_fragment(result, granularity, pattern)
        + "<table class='sk-table'><thead><tr><th>#</th><th>segment</th><th>score</th><th>|score|</th><th>kind</th>"
        f"</tr></thead><tbody>{rows}</tbody></table><script>{_SORT_JS}</script></body></html>"
    )


_ATTENTION_JS = """
(function(){
  var data = JSON.parse(document.getElementById('sk-data').textContent);
  var canvas = document.getElementById('sk-canvas'), tip = document.getElementById('sk-tip');
  var n = data.tokens.length, cell = Math.max(3, Math.min(22, Math.floor(720 / n)));
  var labels = cell >= 8, left = labels ? 120 : 0, top = labels ? 90 : 0;
  canvas.width = left + n * cell + 4; canvas.height = top + n * cell + 4;
  var ctx = canvas.getContext('2d');
  var max = 0;
  data.matrix.forEach(function(row){ row.forEach(function(v){ if (v > max) max = v; }); });
  data.matrix.forEach(function(row, i){
    row.forEach(function(v, j){
      if (v === 0) return;
      ctx.fillStyle = 'rgba(37,99,235,' + (max > 0 ? v / max : 0).toFixed(3) + ')';
      ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
    });
  });
  if (labels) {
    ctx.fillStyle = '#333'; ctx.font = Math.min(12, cell - 1) + 'px sans-serif'; ctx.textBaseline = 'middle';
    data.tokens.forEach(function(t, i){
      var name = (i + ' ' + t).slice(0, 18);
      ctx.textAlign = 'right'; ctx.fillText(name, left - 4, top + i * cell + cell / 2);
      ctx.save(); ctx.translate(left + i * cell + cell / 2, top - 4); ctx.rotate(-Math.PI / 3);
      ctx.textAlign = 'left'; ctx.fillText(name, 0, 0); ctx.restore();
    });
  }
  canvas.addEventListener('mousemove', function(e){
    var r = canvas.getBoundingClientRect();
    var j = Math.floor((e.clientX - r.left - left) / cell), i = Math.floor((e.clientY - r.top - top) / cell);
    if (i < 0 || j < 0 || i >= n || j >= n) { tip.textContent = ''; return; }
    tip.textContent = 'query ' + i + ' ' + JSON.stringify(data.tokens[i]) + '  →  key ' + j + ' ' +
      JSON.stringify(data.tokens[j]) + ':  ' + data.matrix[i][j].toFixed(4);
  });
})();
"""


def attention_page(maps: AttentionMaps, layer: int, head: int | None = None, view: str = "weights") -> str:
    """One attention map as a whole page: a canvas heatmap (rows = queries, columns = keys) with hover read-out,
    plus the sink score of every head. ``view``: weights (one head, or the head average if ``head`` is None) or
    rollout."""
    if view == "rollout":
        matrix, what = maps.rollout[layer], f"attention rollout through layer {layer} (residual {maps.residual})"
    elif head is None:
        matrix, what = maps.head_average[layer], f"layer {layer}, mean over heads"
    else:
        matrix, what = maps.weights[layer, head], f"layer {layer}, head {head}"
    data = {"tokens": maps.pieces, "matrix": [[round(v, 5) for v in row] for row in matrix.tolist()]}
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    sink_rows = "".join(
        f"<tr><td>{layer_index}</td>" + "".join(
            f"<td class='sk-num' style='background:rgba(234,88,12,{float(v):.3f})'>{float(v):.2f}</td>" for v in row
        ) + "</tr>"
        for layer_index, row in enumerate(maps.sinks)
    )
    head_cells = "".join(f"<th>head {h}</th>" for h in range(maps.sinks.shape[1]))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Attention: {html.escape(what)}</title><style>body{{margin:24px}}{STYLE}"
        "#sk-tip{font-family:monospace;font-size:13px;min-height:1.4em;margin:6px 0}</style></head>"
        f"<body class='sk-view'><h2>Attention: {html.escape(what)}</h2>"
        f"<div class='sk-meta'>Rows are queries, columns are keys; darker = more weight. Rows sum to 1.</div>"
        f"<div class='sk-meta'>Text: {html.escape(maps.document.text[:300])}</div>"
        "<div id='sk-tip'></div><canvas id='sk-canvas'></canvas>"
        "<h3>Attention sinks</h3><div class='sk-meta'>Mean weight each head puts on the first token (&lt;bos&gt;); "
        "values near 1 mark a sink head.</div>"
        f"<table class='sk-table'><thead><tr><th>layer</th>{head_cells}</tr></thead><tbody>{sink_rows}</tbody></table>"
        f"<script type='application/json' id='sk-data'>{payload}</script><script>{_ATTENTION_JS}</script></body></html>"
    )
