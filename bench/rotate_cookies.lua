-- wrk script: every request carries the next signed-in user's session cookie, and the run
-- ends with one JSON line of results that bench/run.sh parses.
--
--   BENCH_COOKIES=cookies.txt wrk -c 64 -t 2 -d 25s -s bench/rotate_cookies.lua URL
--
-- BENCH_COOKIES: a file with one `Cookie` header value per line (from
-- `bench_wizard prepare`). Without it, requests carry no cookie (the reference server).
-- Each thread starts at a different user and walks the list, so all users are used evenly.

local cookies = {}
local path = os.getenv("BENCH_COOKIES")
if path and path ~= "" then
  for line in io.lines(path) do
    if line ~= "" then cookies[#cookies + 1] = line end
  end
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  -- `id` is set by setup() before init() runs in the thread.
  n = (id or 1) * 17
  prepared = nil
  if #cookies == 0 then
    prepared = wrk.format("GET", wrk.path)
  end
end

function request()
  if prepared then return prepared end
  n = n + 1
  return wrk.format("GET", wrk.path, { ["Cookie"] = cookies[(n % #cookies) + 1] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
