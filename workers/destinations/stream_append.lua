-- stream_append.lua: append a unit's outcomes to a job's stream, once.
--
-- KEYS[1] the job's outcome stream dropq:job-outcomes:{job}
-- KEYS[2] units already appended   dropq:delivered:{job}:{destination}
-- ARGV[1] unit id
-- ARGV[2] TTL of both keys, seconds
-- ARGV[3..] one outcome each, JSON
-- Returns the number of entries appended (0 when the unit was appended before).

if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'o', ARGV[i])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
return #ARGV - 2
