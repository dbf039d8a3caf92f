-- commit_segment.lua: record one produced segment of a job's input, exactly once.
--
-- A segment is a run of input records that ends with at most one batch: the
-- records packed into that batch plus the rejected and duplicate records met
-- on the way. Produce may be redelivered after a crash; the segment id makes
-- the second commit a no-op, so no counter moves twice, and a batch that
-- exists already is never written again (whatever its state: resetting it
-- would POST it twice).
--
-- KEYS[1] job ledger hash        dropq:job:{job}
-- KEYS[2] committed segments set dropq:job-segments:{job}  (members "seg:{id}")
-- KEYS[3] batch hash             dropq:batch:{batch}    (ignored when ARGV[2] == "")
-- KEYS[4] batch records string   dropq:batch-records:{batch}
-- KEYS[5] job batches set        dropq:job-batches:{job}
-- KEYS[6] outcome unit hash      dropq:unit:{unit}      (ignored when ARGV[8] == "")
-- KEYS[7] watchdog sorted set    dropq:watchdog
-- KEYS[8] job progress hash      dropq:job-progress:{job}  (part id -> first input index not yet committed)
-- KEYS[9] deployment counters    dropq:stats  (workers.metrics.fields; no TTL, bounded fields)
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
-- ARGV[12] part id
-- ARGV[13] the segment's end (input index after its last record)
-- ARGV[14] watchdog deadline, milliseconds (Redis time)
-- ARGV[15] records failed in the segment (integer: a produce that failed on a bug fails the rest of its part)
-- ARGV[16] the deployment's counters to add, JSON {field: amount}, or ""
-- ARGV[17] now, milliseconds (Redis time): the batch's created_ms
-- ARGV[18] records answered from the result cache as enriched (integer; delivered, among the outcomes)
-- ARGV[19] records answered from the result cache as not found (integer)
-- ARGV[20] credits those answers saved (integer)
-- ARGV[21] the batch's lane at the limiter ("first" for an interactive job, "bulk")
-- ARGV[22..] watchdog members armed with it: the batch's, and one per destination of the outcomes
-- Returns 1 when committed, 0 when this segment was already committed, -1 when the job is gone.
-- TTL: every key written gets ARGV[10]; finished jobs' cleanup shortens them.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local ttl = tonumber(ARGV[10])
if redis.call('SADD', KEYS[2], 'seg:' .. ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], 'job_id', ARGV[11], 'state', 'pending', 'count', ARGV[4], 'seq', 0,
    'errors', 0, 'polls', 0, 'created_ms', ARGV[17], 'lane', ARGV[21])
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('SET', KEYS[4], ARGV[3], 'EX', ttl)
  redis.call('SADD', KEYS[5], ARGV[2])
  redis.call('EXPIRE', KEYS[5], ttl)
  redis.call('HINCRBY', KEYS[1], 'batches', 1)
end
redis.call('HINCRBY', KEYS[1], 'received', tonumber(ARGV[5]))
redis.call('HINCRBY', KEYS[1], 'rejected', tonumber(ARGV[6]))
redis.call('HINCRBY', KEYS[1], 'duplicates', tonumber(ARGV[7]))
redis.call('HINCRBY', KEYS[1], 'failed', tonumber(ARGV[15]))
local cached_enriched = tonumber(ARGV[18])
local cached_not_found = tonumber(ARGV[19])
if cached_enriched + cached_not_found > 0 then
  redis.call('HINCRBY', KEYS[1], 'enriched', cached_enriched)
  redis.call('HINCRBY', KEYS[1], 'not_found', cached_not_found)
  redis.call('HINCRBY', KEYS[1], 'delivered', cached_enriched + cached_not_found)
  redis.call('HINCRBY', KEYS[1], 'cached', cached_enriched + cached_not_found)
  redis.call('HINCRBY', KEYS[1], 'credits_saved', tonumber(ARGV[20]))
end
local destinations = tonumber(ARGV[9])
if ARGV[8] ~= '' and destinations > 0 then
  redis.call('HSET', KEYS[6], 'payload', ARGV[8], 'remaining', destinations)
  redis.call('EXPIRE', KEYS[6], ttl)
  redis.call('HINCRBY', KEYS[1], 'deliveries_pending', destinations)
end
redis.call('HSET', KEYS[8], ARGV[12], ARGV[13])
redis.call('EXPIRE', KEYS[8], ttl)
if ARGV[16] ~= '' then
  for field, amount in pairs(cjson.decode(ARGV[16])) do
    redis.call('HINCRBY', KEYS[9], field, amount)
  end
end
for i = 22, #ARGV do
  redis.call('ZADD', KEYS[7], tonumber(ARGV[14]), ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ttl)
return 1
