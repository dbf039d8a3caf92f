-- finish_job.lua: finish a job when nothing is left to do, announced by exactly one finisher.
--
-- A job is done when its input is complete (the final part arrived, every
-- part was produced, and every record up to the final part's end was
-- received), every batch is closed and every delivery to every destination is
-- done or given up. Finishing has two steps so that a crash between them
-- loses nothing: "begin" moves running -> finishing and names the finisher (a
-- task id; a redelivered message keeps its id and may carry on), "end" moves
-- finishing -> finished once the announcement was sent. A finisher beats
-- ("heartbeat") while it works; one silent for longer than ARGV[4] (killed)
-- is replaced by the next caller, and one that failed hands the job back
-- ("release": finishing -> running) for the next finish check.
--
-- KEYS[1] job ledger hash dropq:job:{job}
-- KEYS[2] deployment counters dropq:stats ("end" only: ARGV[5] is incremented there, once per job)
-- ARGV[1] now, milliseconds (Redis time)
-- ARGV[2] finisher id
-- ARGV[3] "begin", "heartbeat", "release" or "end"
-- ARGV[4] after how long a silent finisher is replaced, milliseconds
-- ARGV[5] with "end": the counter of finished jobs in KEYS[2]
-- Returns 1 when the caller is (still) the finisher and should go on (or its release applied), 0 otherwise.
-- TTL: unchanged.

local f = redis.call('HMGET', KEYS[1], 'state', 'final_seen', 'parts_pending', 'batches', 'batches_done',
  'deliveries_pending', 'finisher', 'finishing_ms', 'input_end', 'received')
local state = f[1]
local mine = state == 'finishing' and f[7] == ARGV[2]
if ARGV[3] == 'end' then
  if not mine then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'finished', 'finished_ms', ARGV[1])
  if KEYS[2] then
    redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
  end
  return 1
end
if ARGV[3] == 'heartbeat' then
  if not mine then return 0 end
  redis.call('HSET', KEYS[1], 'finishing_ms', ARGV[1])
  return 1
end
if ARGV[3] == 'release' then
  if not mine then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'running')
  redis.call('HDEL', KEYS[1], 'finisher', 'finishing_ms')
  return 1
end
if state == 'finished' or not state then
  return 0
end
if state == 'finishing' then
  if mine then return 1 end
  if tonumber(ARGV[1]) - tonumber(f[8] or '0') > tonumber(ARGV[4]) then
    redis.call('HSET', KEYS[1], 'finisher', ARGV[2], 'finishing_ms', ARGV[1])
    return 1
  end
  return 0
end
if f[2] ~= '1' or tonumber(f[3] or '0') ~= 0 then
  return 0
end
if f[9] and tonumber(f[10] or '0') < tonumber(f[9]) then
  return 0
end
if tonumber(f[4] or '0') ~= tonumber(f[5] or '0') or tonumber(f[6] or '0') ~= 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'finishing', 'finisher', ARGV[2], 'finishing_ms', ARGV[1])
return 1
