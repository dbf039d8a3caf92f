-- arm.lua: set the deadline of watched work, and renew the TTLs of the keys that work lives in.
--
-- Every message dropq sends itself arms a deadline (when it is due, plus the
-- recovery grace) in the watchdog; the stage that handles it moves the work
-- on and arms the next. A deadline that passes means the message was lost
-- (its worker died holding it): the sweep re-derives the step from the state.
--
-- KEYS[1] watchdog sorted set dropq:watchdog
-- KEYS[2..] keys of the work whose TTL is renewed (a key that is gone stays gone)
-- ARGV[1] member
-- ARGV[2] deadline, milliseconds (Redis time)
-- ARGV[3] TTL, seconds
-- Returns 1.
-- TTL: the watchdog is one global set without TTL; members leave when their work is done.

redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
for i = 2, #KEYS do
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3]))
end
return 1
