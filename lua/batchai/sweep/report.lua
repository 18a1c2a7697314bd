-- The HTML report of a sweep: a summary, each metric plotted against each
-- parameter (and over steps, when trials wrote intermediate metrics), and the
-- results table.  One self-contained file: inline CSS and SVG written here, no
-- script and nothing fetched from the network when it is viewed.
local tabulate = require "batchai.sweep.tabulate"

local M = {}

local format, concat, floor, log10, huge = string.format, table.concat, math.floor, math.log10 or function(x) return math.log(x, 10) end, math.huge

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end
M.escape = esc

local MAX_WORDS = { "acc", "auc", "f1", "precision", "recall", "score", "reward", "iou", "bleu", "map" }

--- The direction in which a metric improves: modes[metric] when given, else
-- "max" for names like accuracy, AUC, F1, score or reward, else "min".
function M.mode_of(metric, modes)
  if modes and modes[metric] then return modes[metric] end
  local lower = metric:lower()
  for _, w in ipairs(MAX_WORDS) do
    if lower:find(w, 1, true) then return "max" end
  end
  return "min"
end

-- ---- axes ------------------------------------------------------------------

-- "Nice" tick values covering [lo, hi] (Heckbert's algorithm), about n of them.
local function nice_number(x, round)
  local e = floor(log10(x))
  local f = x / 10 ^ e
  local nf
  if round then
    nf = f < 1.5 and 1 or f < 3 and 2 or f < 7 and 5 or 10
  else
    nf = f <= 1 and 1 or f <= 2 and 2 or f <= 5 and 5 or 10
  end
  return nf * 10 ^ e
end

local function linear_ticks(lo, hi, n)
  if lo == hi then
    local d = lo == 0 and 1 or math.abs(lo) * 0.1
    lo, hi = lo - d, hi + d
  end
  local range = nice_number(hi - lo, false)
  local step = nice_number(range / (n - 1), true)
  local first = floor(lo / step) * step
  local last = math.ceil(hi / step) * step
  local ticks = {}
  local i = 0
  while true do
    local v = first + i * step
    if v > last + step * 0.5 then break end
    ticks[#ticks + 1] = tonumber(format("%.12g", v))
    i = i + 1
  end
  return ticks, first, last
end

local function log_ticks(lo, hi)
  local a, b = floor(log10(lo)), math.ceil(log10(hi))
  if a == b then b = a + 1 end
  local ticks = {}
  for e = a, b do ticks[#ticks + 1] = 10 ^ e end
  return ticks, 10 ^ a, 10 ^ b
end

local function tick_label(v)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e4 or a < 1e-3 then return format("%.0e", v):gsub("e%+?(%-?)0*(%d)", "e%1%2") end
  return format("%.4g", v)
end

-- ---- plots -------------------------------------------------------------------

local W, H = 340, 230
local ML, MR, MT, MB = 56, 14, 14, 42
local STATE_COLOR = {
  succeeded = "#2563eb", failed = "#dc2626", stopped = "#d97706", running = "#16a34a",
  queued = "#6b7280", pending = "#9ca3af", conflict = "#7c3aed", terminating = "#d97706",
}

local function color_of(state) return STATE_COLOR[state] or "#374151" end

local function is_num(v) return type(v) == "number" and v == v and v ~= huge and v ~= -huge end

-- Maps values onto a pixel range; returns the mapper, the ticks and labels.
local function axis(values, pixel_lo, pixel_hi, allow_log)
  local lo, hi = huge, -huge
  for _, v in ipairs(values) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  if lo == huge then lo, hi = 0, 1 end
  local use_log = allow_log and lo > 0 and hi / lo >= 100
  local ticks, a, b
  if use_log then
    ticks, a, b = log_ticks(lo, hi)
    local la, lb = log10(a), log10(b)
    return function(v) return pixel_lo + (log10(v) - la) / (lb - la) * (pixel_hi - pixel_lo) end, ticks, true
  end
  ticks, a, b = linear_ticks(lo, hi, 5)
  if b == a then b = a + 1 end
  return function(v) return pixel_lo + (v - a) / (b - a) * (pixel_hi - pixel_lo) end, ticks, false
end

local function svg_open(out, title)
  out[#out + 1] = format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(title))
  out[#out + 1] = format('<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>', ML, MT, W - ML - MR, H - MT - MB)
end

local function y_axis(out, ys, ticks, label)
  for _, t in ipairs(ticks) do
    local y = ys(t)
    if y >= MT - 0.5 and y <= H - MB + 0.5 then
      out[#out + 1] = format('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>', ML, W - MR, y, y)
      out[#out + 1] = format('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>', ML - 4, y + 3.5, esc(tick_label(t)))
    end
  end
  out[#out + 1] = format('<text x="12" y="%d" class="label" transform="rotate(-90 12 %d)" text-anchor="middle">%s</text>', (MT + H - MB) // 2, (MT + H - MB) // 2, esc(label))
end

local function x_label(out, label)
  out[#out + 1] = format('<text x="%d" y="%d" class="label" text-anchor="middle">%s</text>', (ML + W - MR) // 2, H - 6, esc(label))
end

local function point_title(row, metric, keys)
  local parts = { format("%s (%s)", row.job or row.name, row.state) }
  parts[#parts + 1] = format("%s = %s", metric, tabulate.cell(row.metrics[metric]))
  for _, k in ipairs(keys) do
    if row.params[k] ~= nil then parts[#parts + 1] = format("%s = %s", k, tabulate.cell(row.params[k])) end
  end
  return concat(parts, "\n")
end

--- One SVG plot of `metric` against parameter `param` over rows; the best row
-- is ringed.  Numeric parameters get a linear or log axis, others one column
-- per value.  Returns the SVG text, or nil when no row has both values.
function M.scatter(rows, metric, param, keys, best)
  local pts = {}
  local numeric = true
  for _, row in ipairs(rows) do
    local y, x = row.metrics[metric], row.params[param]
    if is_num(y) and x ~= nil then
      pts[#pts + 1] = { x = x, y = y, row = row }
      if not is_num(x) then numeric = false end
    end
  end
  if #pts == 0 then return nil end
  local out = {}
  svg_open(out, metric .. " against " .. param)
  local yv = {}
  for i, p in ipairs(pts) do yv[i] = p.y end
  local ys, yt = axis(yv, H - MB, MT, false)
  y_axis(out, ys, yt, metric)
  local xs
  if numeric then
    local xv = {}
    for i, p in ipairs(pts) do xv[i] = p.x end
    local xt
    xs, xt = axis(xv, ML + 8, W - MR - 8, true)
    for _, t in ipairs(xt) do
      local x = xs(t)
      if x >= ML - 0.5 and x <= W - MR + 0.5 then
        out[#out + 1] = format('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="grid"/>', x, x, MT, H - MB)
        out[#out + 1] = format('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>', x, H - MB + 14, esc(tick_label(t)))
      end
    end
  else
    local categories, index = {}, {}
    for _, p in ipairs(pts) do
      local key = tabulate.cell(p.x)
      if not index[key] then categories[#categories + 1] = key; index[key] = true end
    end
    table.sort(categories)
    local pos = {}
    local span = (W - MR - 8) - (ML + 8)
    for i, c in ipairs(categories) do
      pos[c] = ML + 8 + (#categories == 1 and span / 2 or (i - 1) / (#categories - 1) * span)
      local label = #c > 12 and (c:sub(1, 11) .. "…") or c
      out[#out + 1] = format('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>', pos[c], H - MB + 14, esc(label))
    end
    -- Spread the points of one column a little, deterministically, by their order.
    local seen = {}
    xs = function(v, i)
      local c = tabulate.cell(v)
      seen[c] = (seen[c] or 0) + 1
      local offset = ((seen[c] * 7) % 11 - 5) * 1.2
      return pos[c] + offset
    end
  end
  x_label(out, param)
  for i, p in ipairs(pts) do
    local x, y = xs(p.x, i), ys(p.y)
    out[#out + 1] = format('<circle cx="%.1f" cy="%.1f" r="3.6" fill="%s"><title>%s</title></circle>',
      x, y, color_of(p.row.state), esc(point_title(p.row, metric, keys)))
    if p.row == best then
      out[#out + 1] = format('<circle cx="%.1f" cy="%.1f" r="7" class="best"/>', x, y)
    end
  end
  out[#out + 1] = "</svg>"
  return concat(out, "\n")
end

--- One SVG plot of a metric over steps, a line per trial.  curves: array of
-- { row =, series = array of { step, value } }.  Returns nil when empty.
function M.curves(curves, metric, best)
  local xv, yv = {}, {}
  for _, c in ipairs(curves) do
    for _, s in ipairs(c.series) do
      if is_num(s[2]) then xv[#xv + 1] = s[1]; yv[#yv + 1] = s[2] end
    end
  end
  if #xv == 0 then return nil end
  local out = {}
  svg_open(out, metric .. " over steps")
  local ys, yt = axis(yv, H - MB, MT, false)
  y_axis(out, ys, yt, metric)
  local xs, xt = axis(xv, ML + 4, W - MR - 4, false)
  for _, t in ipairs(xt) do
    local x = xs(t)
    if x >= ML - 0.5 and x <= W - MR + 0.5 then
      out[#out + 1] = format('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>', x, H - MB + 14, esc(tick_label(t)))
    end
  end
  x_label(out, "step")
  for _, c in ipairs(curves) do
    local pts = {}
    for _, s in ipairs(c.series) do
      if is_num(s[2]) then pts[#pts + 1] = format("%.1f,%.1f", xs(s[1]), ys(s[2])) end
    end
    if #pts > 0 then
      out[#out + 1] = format('<polyline points="%s" fill="none" stroke="%s" class="%s"><title>%s</title></polyline>',
        concat(pts, " "), color_of(c.row.state), c.row == best and "curve best-curve" or "curve", esc(c.row.job or c.row.name))
    end
  end
  out[#out + 1] = "</svg>"
  return concat(out, "\n")
end

local CSS = [[
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.meta{color:#6b7280;margin:0 0 16px}
.counts span{display:inline-block;margin-right:14px}.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
.plots{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:4px}
figcaption{font-size:12px;color:#4b5563;text-align:center}
svg .frame{fill:#fafafa;stroke:#d1d5db}svg .grid{stroke:#e5e7eb}svg .tick{font-size:10px;fill:#6b7280}
svg .label{font-size:11px;fill:#374151}svg .best{fill:none;stroke:#059669;stroke-width:2}
svg .curve{stroke-width:1.2;opacity:.6}svg .best-curve{stroke:#059669;stroke-width:2.5;opacity:1}
table{border-collapse:collapse;font-size:12.5px}th,td{padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.best td{background:#ecfdf5}.note{color:#6b7280}
]]

--- The report's HTML text.
--   results  a Results value (batchai.sweep.results)
--   opts     name (sweep), experiment (text), generated (time text),
--            modes (metric -> "min"|"max"), curves (metric -> array of
--            { row =, series = }), counts (state -> n)
function M.html(results, opts)
  opts = opts or {}
  local out = {}
  local name = opts.name or "sweep"
  out[#out + 1] = "<!DOCTYPE html>"
  out[#out + 1] = '<html lang="en"><head><meta charset="utf-8">'
  out[#out + 1] = format("<title>Sweep %s</title>", esc(name))
  out[#out + 1] = "<style>" .. CSS .. "</style></head><body>"
  out[#out + 1] = format("<h1>Sweep %s</h1>", esc(name))
  local meta = {}
  if opts.experiment then meta[#meta + 1] = "experiment " .. esc(opts.experiment) end
  meta[#meta + 1] = format("%d trials", #results)
  if opts.generated then meta[#meta + 1] = "generated " .. esc(opts.generated) end
  out[#out + 1] = '<p class="meta">' .. concat(meta, " · ") .. "</p>"

  local counts = {}
  for row in results:rows() do counts[row.state] = (counts[row.state] or 0) + 1 end
  local states = {}
  for s in pairs(counts) do states[#states + 1] = s end
  table.sort(states)
  local parts = {}
  for _, s in ipairs(states) do
    parts[#parts + 1] = format('<span><i class="dot" style="background:%s"></i>%s %d</span>', color_of(s), esc(s), counts[s])
  end
  out[#out + 1] = '<p class="counts">' .. concat(parts) .. "</p>"

  local metrics = results:metric_names()
  local params = results:param_names()
  local best_of = {}
  if #metrics > 0 then
    out[#out + 1] = "<h2>Best trials</h2><table><tr><th>metric</th><th>goal</th><th>value</th><th>trial</th><th>parameters</th></tr>"
    for _, metric in ipairs(metrics) do
      local mode = M.mode_of(metric, opts.modes)
      local best = results:best(metric, mode)
      best_of[metric] = best
      if best then
        local p = {}
        for _, k in ipairs(params) do
          if best.params[k] ~= nil then p[#p + 1] = esc(k .. "=" .. tabulate.cell(best.params[k])) end
        end
        out[#out + 1] = format('<tr><td>%s</td><td>%s</td><td class="num">%s</td><td>%s</td><td>%s</td></tr>',
          esc(metric), mode == "min" and "lowest" or "highest", esc(tabulate.cell(best.metrics[metric])),
          esc(best.job or best.name), concat(p, " "))
      end
    end
    out[#out + 1] = "</table>"
  end

  for _, metric in ipairs(metrics) do
    local figures = {}
    for _, param in ipairs(params) do
      local svg = M.scatter(results.list, metric, param, params, best_of[metric])
      if svg then
        figures[#figures + 1] = format("<figure>%s<figcaption>%s against %s</figcaption></figure>", svg, esc(metric), esc(param))
      end
    end
    local curve_set = opts.curves and opts.curves[metric]
    if curve_set and #curve_set > 0 then
      local svg = M.curves(curve_set, metric, best_of[metric])
      if svg then
        figures[#figures + 1] = format("<figure>%s<figcaption>%s over steps</figcaption></figure>", svg, esc(metric))
      end
    end
    if #figures > 0 then
      out[#out + 1] = format('<h2>%s</h2><div class="plots">%s</div>', esc(metric), concat(figures, "\n"))
    end
  end

  out[#out + 1] = "<h2>Trials</h2><table><tr>"
  local headers, rows = results:grid(true)
  for _, h in ipairs(headers) do out[#out + 1] = "<th>" .. esc(h) .. "</th>" end
  out[#out + 1] = "</tr>"
  local first_best = best_of[metrics[1] or ""]
  for i, r in ipairs(rows) do
    local row = results.list[i]
    out[#out + 1] = row == first_best and '<tr class="best">' or "<tr>"
    for c = 1, #headers do
      local v = r[c]
      if c == 5 and type(v) == "number" then v = tabulate.duration(v) end
      local cls = type(r[c]) == "number" and ' class="num"' or (headers[c] == "note" and ' class="note"' or "")
      out[#out + 1] = format("<td%s>%s</td>", cls, esc(tabulate.cell(v)))
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</table>"
  out[#out + 1] = "</body></html>"
  return concat(out, "\n")
end

return M
