-- finish_job.lua: finish a job when nothing is left to do, announced by exactly one finisher.
--
-- A job is done when its input is complete (the final part arrived and every
-- part was produced), every batch is closed and every delivery to every
-- destination is done or given up. Finishing has two steps so that a crash
-- between them loses nothing: "begin" moves running -> finishing and names
-- the finisher (a task id; a redelivered message keeps its id and may carry
-- on), "end" moves finishing -> finished once the announcement was sent.
--
-- KEYS[1] job ledger hash dropq:job:{job}
-- ARGV[1] now, milliseconds since the epoch
-- ARGV[2] finisher id
-- ARGV[3] "begin" or "end"
-- Returns 1 when the caller is (still) the finisher and should go on, 0 otherwise.
-- TTL: unchanged.

local f = redis.call('HMGET', KEYS[1], 'state', 'final_seen', 'parts_pending', 'batches', 'batches_done',
  'deliveries_pending', 'finisher')
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
  return 0
end
if f[2] ~= '1' or tonumber(f[3] or '0') ~= 0 then
  return 0
end
if tonumber(f[4] or '0') ~= tonumber(f[5] or '0') or tonumber(f[6] or '0') ~= 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'finishing', 'finisher', ARGV[2])
return 1
