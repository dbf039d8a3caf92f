-- part_produced.lua: note, once, that every record of an input part has been produced.
--
-- KEYS[1] job ledger hash     dropq:job:{job}
-- KEYS[2] produced parts set  dropq:job-produced:{job}
-- ARGV[1] part id
-- ARGV[2] TTL, seconds
-- Returns 1 when counted now, 0 when counted before (a redelivered produce).

if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'parts_pending', -1)
return 1
