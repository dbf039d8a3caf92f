-- split_batch.lua: replace a batch the API refused as invalid by its two halves, once.
--
-- The parent becomes "split" (closed, counted in batches_done); the halves are
-- new pending batches, so bisecting isolates the record the API refuses.
--
-- KEYS[1] parent batch hash    KEYS[2] job ledger hash    KEYS[3] job batches set
-- KEYS[4] first half hash      KEYS[5] first half records
-- KEYS[6] second half hash     KEYS[7] second half records
-- KEYS[8] watchdog sorted set  dropq:watchdog
-- KEYS[9] deployment counters  dropq:stats  (workers.metrics.fields; no TTL, bounded fields)
-- ARGV[1] parent's required seq
-- ARGV[2] job id
-- ARGV[3] first half records JSON   ARGV[4] its count   ARGV[5] its batch id
-- ARGV[6] second half records JSON  ARGV[7] its count   ARGV[8] its batch id
-- ARGV[9] TTL, seconds
-- ARGV[10] watchdog deadline of the halves, milliseconds (Redis time)
-- ARGV[11] the parent's watchdog member (removed)   ARGV[12], ARGV[13] the halves' members (armed)
-- ARGV[14] the deployment's counters to add, JSON {field: amount}, or ""
-- The halves keep the parent's created_ms (their records have waited since then) and are sent alone
-- ("solo": never pooled into a shared request, which the refused record would make fail again).
-- Returns 1 when split now, 0 when the parent had moved on (a stale message).

if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local state = redis.call('HGET', KEYS[1], 'state')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
if state ~= 'posting' or seq ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'split')
redis.call('HINCRBY', KEYS[1], 'seq', 1)
local ttl = tonumber(ARGV[9])
local created_ms = redis.call('HGET', KEYS[1], 'created_ms') or ''
-- The halves keep their parent's lane (its job's priority).
local lane = redis.call('HGET', KEYS[1], 'lane') or ''
local halves = {{KEYS[4], KEYS[5], ARGV[3], ARGV[4], ARGV[5]}, {KEYS[6], KEYS[7], ARGV[6], ARGV[7], ARGV[8]}}
for _, h in ipairs(halves) do
  redis.call('HSET', h[1], 'job_id', ARGV[2], 'state', 'pending', 'count', h[4], 'seq', 0, 'errors', 0, 'polls', 0,
    'solo', 1)
  if created_ms ~= '' then
    redis.call('HSET', h[1], 'created_ms', created_ms)
  end
  if lane ~= '' then
    redis.call('HSET', h[1], 'lane', lane)
  end
  redis.call('EXPIRE', h[1], ttl)
  redis.call('SET', h[2], h[3], 'EX', ttl)
  redis.call('SADD', KEYS[3], h[5])
end
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('HINCRBY', KEYS[2], 'batches', 2)
redis.call('HINCRBY', KEYS[2], 'batches_done', 1)
if ARGV[14] ~= '' then
  for field, amount in pairs(cjson.decode(ARGV[14])) do
    redis.call('HINCRBY', KEYS[9], field, amount)
  end
end
redis.call('ZREM', KEYS[8], ARGV[11])
redis.call('ZADD', KEYS[8], tonumber(ARGV[10]), ARGV[12])
redis.call('ZADD', KEYS[8], tonumber(ARGV[10]), ARGV[13])
return 1
