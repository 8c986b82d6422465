-- Mixed reads for `scripts/load-bench`: each request takes the next path of the list given after
-- `--`, with the API key from the environment.
local paths = {}
local next_path = 0

function init(args)
  for _, p in ipairs(args) do
    paths[#paths + 1] = p
  end
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BANKREC_KEY")
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end

function done(summary, latency, requests)
  io.write(string.format("requests: %d in %.1f s, %.0f req/s, errors: %d (non-2xx %d)\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
  io.write(string.format("latency ms: p50 %.2f, p90 %.2f, p99 %.2f, max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
