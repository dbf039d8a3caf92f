-- finish_job.lua: finish a job when nothing is left to do, announced by exactly one finisher.
--
-- A job is done when its input is complete (the final part arrived, every
-- part was produced, and every record up to the final part's end was
-- received), every batch is closed and every delivery to every destination is
-- done or given up. A finisher silent for longer than ARGV[4] (its task failed
-- for good) is replaced by the next caller. Finishing has two steps so that a crash
-- between them loses nothing: "begin" moves running -> finishing and names
-- the finisher (a task id; a redelivered message keeps its id and may carry
-- on), "end" moves finishing -> finished once the announcement was sent.
--
-- KEYS[1] job ledger hash dropq:job:{job}
-- ARGV[1] now, milliseconds since the epoch
-- ARGV[2] finisher id
-- ARGV[3] "begin" or "end"
-- ARGV[4] after how long a silent finisher is replaced, milliseconds
-- Returns 1 when the caller is (still) the finisher and should go on, 0 otherwise.
-- TTL: unchanged.

local f = redis.call('HMGET', KEYS[1], 'state', 'final_seen', 'parts_pending', 'batches', 'batches_done',
  'deliveries_pending', 'finisher', 'finishing_ms', 'input_end', 'received')
local state = f[1]
if ARGV[3] == 'end' then
  if state == 'finishing' and f[7] == ARGV[2] then
    redis.call('HSET', KEYS[1], 'state', 'finished', 'finished_ms', ARGV[1])
    return 1
  end
  return 0
end
if state == 'finished' then
  return 0
end
if state == 'finishing' then
  if f[7] == ARGV[2] then return 1 end
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
