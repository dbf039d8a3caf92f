-- fetch.lua: keep a batch's results and move it to fetched, together and once.
--
-- Results come from a poll or a webhook push, possibly both at once: only the
-- first, while the batch is still submitted, is kept; a later one (say a
-- forced partial poll after a complete push) changes nothing.
--
-- KEYS[1] batch hash          dropq:batch:{batch}
-- KEYS[2] batch results string dropq:batch-results:{batch}
-- KEYS[3] batch records string dropq:batch-records:{batch}
-- ARGV[1] results, JSON
-- ARGV[2] "1" when the results are partial (forceResults while in progress), else "0"
-- ARGV[3] now, milliseconds
-- ARGV[4] TTL, seconds
-- ARGV[5] how the results came: "get" (a poll) or "push" (a webhook), kept as fetched_via
-- For a batch carried by a shared request (its slice of the shared results, see share.lua):
-- KEYS[4] watchdog sorted set dropq:watchdog (its watch comes back, for its sink)
-- ARGV[6] "carried": the state it must be in instead of submitted
-- ARGV[7] its watchdog member   ARGV[8] its deadline, milliseconds
-- ARGV[9..] field, value pairs copied from the shared request (request_id, submitted_ms, ...)
-- Returns 1 when kept, 0 when the batch was no longer submitted (or carried).
-- TTL: all three keys get ARGV[4].

if redis.call('HGET', KEYS[1], 'state') ~= (ARGV[6] or 'submitted') then
  return 0
end
if ARGV[6] then
  for i = 9, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('ZADD', KEYS[4], tonumber(ARGV[8]), ARGV[7])
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'state', 'fetched', 'partial', ARGV[2], 'fetched_ms', ARGV[3],
  'fetched_via', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
return 1
