-- claim.lua: take a batch for its one POST, unless another worker holds it (compare and set with a lease).
--
-- A claim moves pending -> posting and sets a lease covering the POST. While
-- the lease runs, no other message may claim the batch, whatever its seq (two
-- messages with one seq exist: a resent submit, a sweep). A claim of a batch
-- left in posting with an expired lease (its worker died inside the POST), or
-- marked in doubt (the API's answer was lost), re-POSTs: the caller counts it.
--
-- KEYS[1] batch hash dropq:batch:{batch}
-- KEYS[2] batch records dropq:batch-records:{batch}
-- ARGV[1] required current seq
-- ARGV[2] now, milliseconds
-- ARGV[3] lease end, milliseconds
-- ARGV[4] TTL, seconds
-- Returns {seq, in_doubt} when claimed (in_doubt 1 when this POST may repeat an earlier one; the
-- caller read the records before its rate token, since they never change, so that the POST follows
-- the token by this small round trip only), or {code, 0} with code -1 missing, -2 state not allowed,
-- -3 stale seq, -4 leased to another worker.
-- TTL: the batch and its records renewed to ARGV[4].

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
local f = redis.call('HMGET', KEYS[1], 'state', 'seq', 'lease_until_ms', 'in_doubt')
local state, seq = f[1], tonumber(f[2] or '0')
if state ~= 'pending' and state ~= 'posting' then
  return {-2, 0}
end
if seq ~= tonumber(ARGV[1]) then
  return {-3, 0}
end
if state == 'posting' and tonumber(f[3] or '0') > tonumber(ARGV[2]) then
  return {-4, 0}
end
local in_doubt = 0
if state == 'posting' or f[4] == '1' then
  in_doubt = 1
end
redis.call('HSET', KEYS[1], 'state', 'posting', 'lease_until_ms', ARGV[3], 'in_doubt', 0)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
return {seq, in_doubt}
