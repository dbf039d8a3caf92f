-- pool_join.lua: put a batch that is not full in the pool of its request options, to share a POST.
--
-- Batches of any job that can share a request (same siren and language) wait
-- in one pool per deployment until a shared request is sealed out of them
-- (share.lua): when they hold a full batch, or when the oldest has waited the
-- linger time. Joining twice is a no-op.
--
-- KEYS[1] batch hash        dropq:batch:{batch}
-- KEYS[2] pool sorted set   dropq:pool:{options}        (batch id -> when it joined, ms)
-- KEYS[3] pool sizes hash   dropq:pool-sizes:{options}  (batch id -> its records)
-- ARGV[1] the batch id
-- ARGV[2] required seq
-- ARGV[3] now, milliseconds (Redis time)
-- ARGV[4] TTL, seconds
-- Returns {code, records in the pool, members, oldest batch id, when it joined}: code 1 joined now,
-- 2 it was in already; or {code} with -1 missing, -2 not poolable (no longer pending, shared, or sent
-- alone), -3 stale seq.
-- TTL: the batch, the pool and its sizes renewed to ARGV[4].

local f = redis.call('HMGET', KEYS[1], 'state', 'seq', 'count', 'solo', 'carrier', 'in_doubt')
if not f[1] then
  return {-1}
end
if f[1] ~= 'pending' or f[4] == '1' or (f[5] and f[5] ~= '') or f[6] == '1' then
  return {-2}
end
if tonumber(f[2] or '0') ~= tonumber(ARGV[2]) then
  return {-3}
end
local ttl = tonumber(ARGV[4])
local code = 2
if redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1]) == 1 then
  code = 1
  redis.call('HSET', KEYS[3], ARGV[1], f[3])
  redis.call('HSET', KEYS[1], 'pooled', 1)
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
local total = 0
for _, n in ipairs(redis.call('HVALS', KEYS[3])) do
  total = total + tonumber(n)
end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {code, total, redis.call('ZCARD', KEYS[2]), oldest[1] or '', tonumber(oldest[2] or '0')}
