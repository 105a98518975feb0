-- Shared by every scenario: per-thread data files, and a machine-readable summary line.
-- Arguments after "--": data file, bearer token ("-" for none), thread count, then scenario extras.

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- The tab-separated rows of `path` that belong to this thread (row i goes to thread i mod n).
function load_rows(path, nthreads)
  local rows, i = {}, 0
  for line in io.lines(path) do
    if line ~= "" and i % nthreads == tid then
      local row = {}
      for field in string.gmatch(line, "[^\t]+") do row[#row + 1] = field end
      rows[#rows + 1] = row
    end
    i = i + 1
  end
  if #rows == 0 then error("no rows for thread " .. tid .. " in " .. path) end
  return rows
end

function headers_for(bearer, content_type)
  local h = {}
  if bearer ~= nil and bearer ~= "-" then h["Authorization"] = "Bearer " .. bearer end
  if content_type then h["Content-Type"] = content_type end
  return h
end

function connect_call(path, bearer, body)
  return wrk.format("POST", path, headers_for(bearer, "application/json"), body)
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

iterations = 0

function done(summary, latency, requests)
  local its = 0
  for _, t in ipairs(threads) do its = its + (t:get("iterations") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"iterations":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean, its))
end
