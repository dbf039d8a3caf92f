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
-- ARGV[2]   the buckets' numbers, in KEYS order from KEYS[2]: 2 bytes each, big-endian
-- ARGV[3]   the records, 18 bytes each: key position (2.., 4 bytes), field (10 bytes), index (4 bytes),
--           big-endian: one argument, not three per record (packing 750 arguments a call was the most
--           expensive part of a produce)
-- Returns the first index for each record, in order (integers).

local ttl = tonumber(ARGV[1])
local numbers = ARGV[2]
local buckets = {}
for i = 1, #numbers, 2 do
  buckets[#buckets + 1] = tostring(struct.unpack('>H', numbers, i))
end
redis.call('SADD', KEYS[1], unpack(buckets))
redis.call('EXPIRE', KEYS[1], ttl)
local records = ARGV[3]
local out = {}
for i = 1, #records, 18 do
  local key = KEYS[struct.unpack('>I4', records, i)]
  local field = string.sub(records, i + 4, i + 13)
  local index = string.format('%d', struct.unpack('>I4', records, i + 14))
  redis.call('HSETNX', key, field, index)
  out[#out + 1] = tonumber(redis.call('HGET', key, field))
end
for k = 2, #KEYS do
  redis.call('EXPIRE', KEYS[k], ttl)
end
return out
