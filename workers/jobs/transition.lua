-- transition.lua: move a batch from one state to another, atomically (compare and set).
--
-- Every message that drives a batch (a submit or a poll) carries the batch's
-- sequence number; a message whose number is no longer current is stale (a
-- redelivered duplicate) and its transition is refused. A transition may bump
-- the number, which makes every older message stale.
--
-- KEYS[1] batch hash dropq:batch:{batch}
-- KEYS[2] batch records dropq:batch-records:{batch}
-- KEYS[3] batch results dropq:batch-results:{batch}
-- ARGV[1] allowed current states, comma separated ("pending,posting")
-- ARGV[2] required current seq, or "" for any
-- ARGV[3] new state, or "" to keep it
-- ARGV[4] "1" to increment seq, "0" to keep it
-- ARGV[5] TTL, seconds
-- ARGV[6..] field, value pairs to set
-- Returns the (new) seq when applied, -1 when the batch is missing, -2 when
-- its state is not allowed, -3 when the seq is stale.
-- TTL: the batch, its records and its results renewed to ARGV[5] (a batch lives that long after its
-- last transition); a key that is gone stays gone.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local state = redis.call('HGET', KEYS[1], 'state')
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == state then allowed = true end
end
if not allowed then
  return -2
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= seq then
  return -3
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[3])
end
if ARGV[4] == '1' then
  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
end
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
for i = 1, 3 do
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[5]))
end
return seq
