-- part_produced.lua: note, once, that every record of an input part has been produced.
--
-- KEYS[1] job ledger hash          dropq:job:{job}
-- KEYS[2] produced parts sorted set dropq:job-produced:{job}  (member "start:end", score start)
-- KEYS[3] job progress hash        dropq:job-progress:{job}  (the part's entry is no longer needed)
-- ARGV[1] "start:end" of the part (input indexes, end excluded)
-- ARGV[2] start (integer)
-- ARGV[3] TTL, seconds
-- ARGV[4] part id
-- Returns 1 when counted now, 0 when counted before (a redelivered produce) or the job is gone.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[4])
if redis.call('ZADD', KEYS[2], 'NX', tonumber(ARGV[2]), ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[1], 'parts_pending', -1)
return 1
