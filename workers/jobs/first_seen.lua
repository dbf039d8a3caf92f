-- first_seen.lua: for each record's identity key, the index of the first record of the job that had it.
--
-- A record is a duplicate when the answer is another index. A record seen
-- again under its own index (a redelivered produce) is not a duplicate.
--
-- KEYS[1] identity hash of the job dropq:job-seen:{job}  (identity key -> first index)
-- ARGV[1] TTL, seconds
-- ARGV[2..] identity key, index, identity key, index, ...
-- Returns the first index for each pair, in order (integers).

local out = {}
for i = 2, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return out
