-- drop_if_due.lua: drop a watchdog member whose work turned out to be done, unless it was re-armed.
--
-- KEYS[1] watchdog sorted set dropq:watchdog
-- ARGV[1] member
-- ARGV[2] now, milliseconds (Redis time): a deadline later than this was set by a live worker
-- Returns 1 when dropped, 0 when it was re-armed (or gone).

local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
