-- delivery_done.lua: count one unit's delivery to one destination as done, exactly once.
--
-- KEYS[1] job ledger hash      dropq:job:{job}
-- KEYS[2] done deliveries set  dropq:delivered:{job}:units
-- KEYS[3] outcome unit hash    dropq:unit:{unit}
-- ARGV[1] "{unit}|{destination}"
-- ARGV[2] "1" when the destination gave up (counted in deliveries_failed), else "0"
-- ARGV[3] TTL of the done set, seconds
-- Returns 1 when counted now, 0 when it had been counted before.
-- Cleanup: the unit (bulk outcome data) is deleted once its last destination is done.

if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[1], 'deliveries_pending', -1)
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[1], 'deliveries_failed', 1)
end
if redis.call('HINCRBY', KEYS[3], 'remaining', -1) <= 0 then
  redis.call('DEL', KEYS[3])
end
return 1
