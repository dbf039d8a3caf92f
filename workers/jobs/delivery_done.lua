-- delivery_done.lua: count one unit's delivery to one destination as done, exactly once.
--
-- KEYS[1] job ledger hash      dropq:job:{job}
-- KEYS[2] done deliveries set  dropq:job-deliveries:{job}
-- KEYS[3] outcome unit hash    dropq:unit:{unit}
-- KEYS[4] watchdog sorted set  dropq:watchdog
-- KEYS[5] deployment counters   dropq:stats  (workers.metrics.fields; no TTL, bounded fields)
-- ARGV[1] "{unit}|{destination}"
-- ARGV[2] "1" when the destination gave up (counted in deliveries_failed), else "0"
-- ARGV[3] TTL of the done set, seconds
-- ARGV[4] the delivery's watchdog member (removed)
-- ARGV[5] the counter of this destination's outcome in KEYS[5] (incremented once)
-- Returns 1 when counted now, 0 when it had been counted before or the job is gone (nothing is created then).
-- Cleanup: the unit (bulk outcome data) is deleted once its last destination is done.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[4])
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[1], 'deliveries_pending', -1)
redis.call('HINCRBY', KEYS[5], ARGV[5], 1)
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[1], 'deliveries_failed', 1)
end
if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('HINCRBY', KEYS[3], 'remaining', -1) <= 0 then
  redis.call('DEL', KEYS[3])
end
return 1
