-- unshare.lua: give a shared request's batches back to be sent alone.
--
-- Two cases: the API refused the shared request as invalid (400), so each of
-- its batches is sent alone and bisects itself if it holds the refused record
-- ("refused": the shared request must be posting at the given seq, and is
-- closed as "split"); or a carried batch outlived its shared request (gone, or
-- closed without taking it along: "orphan"; the shared request is left as it
-- is). Each batch still carried by this request goes back to pending, alone,
-- with a new seq and a watch.
--
-- KEYS[1] shared request hash dropq:batch:{shared id}
-- KEYS[2] watchdog sorted set dropq:watchdog
-- KEYS[3..] the batches' hashes
-- ARGV[1] "refused" or "orphan"
-- ARGV[2] the shared request's id
-- ARGV[3] "refused": its required seq
-- ARGV[4] TTL, seconds
-- ARGV[5] watchdog deadline of the batches, milliseconds
-- ARGV[6] the shared request's watchdog member
-- ARGV[7..] the batches' watchdog members, in KEYS order
-- Returns the batches' new seqs, in KEYS order (-1 for one not carried by this request), or {} when
-- the shared request was not in the state the case needs.
-- TTL: every batch written gets ARGV[4].

local state = redis.call('HGET', KEYS[1], 'state')
if ARGV[1] == 'refused' then
  if state ~= 'posting' or tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1') ~= tonumber(ARGV[3]) then
    return {}
  end
  redis.call('HSET', KEYS[1], 'state', 'split')
  redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZREM', KEYS[2], ARGV[6])
elseif state == 'pending' or state == 'posting' or state == 'submitted' or state == 'fetched' then
  -- Still open: it carries its batches on.
  return {}
end
local ttl = tonumber(ARGV[4])
local seqs = {}
for i = 3, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'state', 'carrier')
  if f[1] == 'carried' and f[2] == ARGV[2] then
    redis.call('HSET', KEYS[i], 'state', 'pending', 'solo', 1)
    redis.call('HDEL', KEYS[i], 'carrier')
    seqs[#seqs + 1] = redis.call('HINCRBY', KEYS[i], 'seq', 1)
    redis.call('EXPIRE', KEYS[i], ttl)
    redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[4 + i])
  else
    seqs[#seqs + 1] = -1
  end
end
return seqs
