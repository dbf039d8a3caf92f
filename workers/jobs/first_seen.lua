-- first_seen.lua: for each record's identity key, the index of the first record of the job that had it.
--
-- A record is a duplicate when the answer is another index. A record seen
-- again under its own index (a redelivered produce) is not a duplicate.
--
-- The job's digests are spread over small hashes ("buckets", by the digest's first bytes) so that
-- each stays in Redis's compact listpack encoding; the set of the buckets a job touched lets its
-- finish delete them without a SCAN.
--
-- KEYS[1]   the job's touched buckets (set)  dropq:job-seen:{job}
-- KEYS[2..] bucket hashes                    dropq:job-seen-b:{job}:{bucket}  (digest rest -> first index)
-- ARGV[1]   TTL, seconds
-- ARGV[2]   n, the number of buckets (= #KEYS - 1); ARGV[3..2+n] their numbers, in KEYS order
-- ARGV[3+n..] key position (2..), field, index; key position, field, index; ...
-- Returns the first index for each triple, in order (integers).

local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local buckets = {}
for i = 1, n do
  buckets[#buckets + 1] = ARGV[2 + i]
end
redis.call('SADD', KEYS[1], unpack(buckets))
redis.call('EXPIRE', KEYS[1], ttl)
local out = {}
for i = 3 + n, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i])]
  redis.call('HSETNX', key, ARGV[i + 1], ARGV[i + 2])
  out[#out + 1] = tonumber(redis.call('HGET', key, ARGV[i + 1]))
end
for k = 2, #KEYS do
  redis.call('EXPIRE', KEYS[k], ttl)
end
return out
