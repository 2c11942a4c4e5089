-- wrk script of bench_catalog.py: every request takes its path from a pool file (one path a
-- line, built by the benchmark), then report.lua prints the machine-readable summary.
--
--   wrk ... -s catalog_mix.lua http://127.0.0.1:PORT -- POOL_FILE MODE THREADS
--
-- MODE "random": each request picks a pool line at random (the warm runs: the pool was all
--                requested once before, so every answer is cached);
-- MODE "seq":    thread k walks lines k, k+THREADS, k+2*THREADS... in order and wraps only
--                past the end of its share (the cold runs: a pool of distinct requests, so no
--                request repeats one another within the run unless the pool is exhausted).
-- Requests are pre-formatted in init() so that the load generator spends little CPU.
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  local path, mode, count = args[1], args[2], tonumber(args[3])
  seq = (mode == "seq")
  reqs, n = {}, 0
  local i = 0
  for line in io.lines(path) do
    if (not seq) or (i % count == thread_id) then
      n = n + 1
      reqs[n] = wrk.format("GET", line)
    end
    i = i + 1
  end
  if n == 0 then error("empty pool share: " .. path) end
  math.randomseed(7919 * (thread_id + 1))
  nxt = 0
end

function request()
  if seq then
    nxt = nxt % n + 1
    return reqs[nxt]
  end
  return reqs[math.random(n)]
end

dofile(os.getenv("BENCH_REPORT_LUA"))
