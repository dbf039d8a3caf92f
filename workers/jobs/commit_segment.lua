-- commit_segment.lua: record one produced segment of a job's input, exactly once.
--
-- A segment is a run of input records that ends with at most one batch: the
-- records packed into that batch plus the rejected and duplicate records met
-- on the way. Produce may be redelivered after a crash; the segment id makes
-- the second commit a no-op, so no counter moves twice.
--
-- KEYS[1] job ledger hash        dropq:job:{job}
-- KEYS[2] committed segments set dropq:job-segments:{job}  (members "seg:{id}")
-- KEYS[3] batch hash             dropq:batch:{batch}    (ignored when ARGV[2] == "")
-- KEYS[4] batch records string   dropq:batch-records:{batch}
-- KEYS[5] job batches set        dropq:job-batches:{job}
-- KEYS[6] outcome unit hash      dropq:unit:{unit}      (ignored when ARGV[8] == "")
-- ARGV[1] segment id
-- ARGV[2] batch id, or "" when the segment has no batch
-- ARGV[3] batch records, JSON as sent to the API
-- ARGV[4] records in the batch (integer)
-- ARGV[5] records received in the segment (integer)
-- ARGV[6] records rejected in the segment (integer)
-- ARGV[7] duplicate records in the segment (integer)
-- ARGV[8] outcomes of rejected and duplicate records, JSON, or ""
-- ARGV[9] destinations the outcomes go to (integer)
-- ARGV[10] TTL of every key written, seconds
-- ARGV[11] job id
-- ARGV[12] now, milliseconds (the batch's first touch, for the sweep)
-- Returns 1 when committed, 0 when this segment was already committed.
-- TTL: every key written gets ARGV[10]; finished jobs' cleanup shortens them.

local ttl = tonumber(ARGV[10])
if redis.call('SADD', KEYS[2], 'seg:' .. ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], 'job_id', ARGV[11], 'state', 'pending', 'count', ARGV[4], 'seq', 0,
    'errors', 0, 'polls', 0, 'touched_ms', ARGV[12])
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('SET', KEYS[4], ARGV[3], 'EX', ttl)
  redis.call('SADD', KEYS[5], ARGV[2])
  redis.call('EXPIRE', KEYS[5], ttl)
  redis.call('HINCRBY', KEYS[1], 'batches', 1)
end
redis.call('HINCRBY', KEYS[1], 'received', tonumber(ARGV[5]))
redis.call('HINCRBY', KEYS[1], 'rejected', tonumber(ARGV[6]))
redis.call('HINCRBY', KEYS[1], 'duplicates', tonumber(ARGV[7]))
local destinations = tonumber(ARGV[9])
if ARGV[8] ~= '' and destinations > 0 then
  redis.call('HSET', KEYS[6], 'payload', ARGV[8], 'remaining', destinations)
  redis.call('EXPIRE', KEYS[6], ttl)
  redis.call('HINCRBY', KEYS[1], 'deliveries_pending', destinations)
end
redis.call('EXPIRE', KEYS[1], ttl)
return 1
