-- complete_batch.lua: close a batch (results joined, or failed) and count its records, exactly once.
--
-- Closing hands the batch's watch over to its deliveries in the same step:
-- the batch's watchdog member goes, one per destination comes, so a crash
-- right after closing still gets every delivery sent by the sweep.
--
-- KEYS[1] batch hash       dropq:batch:{batch}
-- KEYS[2] job ledger hash  dropq:job:{job}
-- KEYS[3] outcome unit     dropq:unit:{unit}
-- KEYS[4] watchdog sorted set dropq:watchdog
-- KEYS[5] deployment counters dropq:stats  (workers.metrics.fields; no TTL, bounded fields)
-- ARGV[1] allowed current states, comma separated
-- ARGV[2] final state ("done" or "failed")
-- ARGV[3] enriched records (integer)
-- ARGV[4] not-found records (integer)
-- ARGV[5] failed records (integer)
-- ARGV[6] outcomes JSON for the destinations
-- ARGV[7] destinations (integer)
-- ARGV[8] TTL of the unit, seconds
-- ARGV[9] reason (failed batches), or ""
-- ARGV[10] credits the API keeps for these records (integer)
-- ARGV[11] the batch's watchdog member (removed)
-- ARGV[12] watchdog deadline of the deliveries, milliseconds (Redis time)
-- ARGV[13] the deployment's counters to add, JSON {field: amount}, or ""
-- ARGV[14..] the deliveries' watchdog members (one per destination)
-- Returns 1 when applied, 0 when the batch was not in an allowed state (already closed) or the job is gone.
-- TTL: the unit, the batch and the ledger all get ARGV[8].

if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local state = redis.call('HGET', KEYS[1], 'state')
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == state then allowed = true end
end
if not allowed then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'reason', ARGV[9])
redis.call('HINCRBY', KEYS[1], 'seq', 1)
local enriched = tonumber(ARGV[3])
local not_found = tonumber(ARGV[4])
redis.call('HINCRBY', KEYS[2], 'enriched', enriched)
redis.call('HINCRBY', KEYS[2], 'not_found', not_found)
redis.call('HINCRBY', KEYS[2], 'delivered', enriched + not_found)
redis.call('HINCRBY', KEYS[2], 'failed', tonumber(ARGV[5]))
redis.call('HINCRBY', KEYS[2], 'batches_done', 1)
redis.call('HINCRBY', KEYS[2], 'credits_used', tonumber(ARGV[10]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
local destinations = tonumber(ARGV[7])
if destinations > 0 then
  redis.call('HSET', KEYS[3], 'payload', ARGV[6], 'remaining', destinations)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
  redis.call('HINCRBY', KEYS[2], 'deliveries_pending', destinations)
end
if ARGV[13] ~= '' then
  for field, amount in pairs(cjson.decode(ARGV[13])) do
    redis.call('HINCRBY', KEYS[5], field, amount)
  end
end
redis.call('ZREM', KEYS[4], ARGV[11])
for i = 14, #ARGV do
  redis.call('ZADD', KEYS[4], tonumber(ARGV[12]), ARGV[i])
end
return 1
