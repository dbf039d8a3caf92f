-- register_part.lua: count an input part of a job once, and note whether it is the final one.
--
-- KEYS[1] job ledger hash dropq:job:{job}
-- KEYS[2] job parts set   dropq:job-parts:{job}
-- ARGV[1] part id
-- ARGV[2] "1" when this part completes the input
-- ARGV[3] TTL, seconds
-- ARGV[4] end of the part (its offset plus its records): with the final part, the job's input size
-- Returns 1 when the part is new, 0 when it was registered before (a resent call).
-- TTL: both keys get ARGV[3].

local new = redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
if new == 1 then
  redis.call('HINCRBY', KEYS[1], 'parts_pending', 1)
  if redis.call('HGET', KEYS[1], 'state') == 'finished' then
    -- More input for a finished job reopens it.
    redis.call('HSET', KEYS[1], 'state', 'running')
  end
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'final_seen', 1, 'input_end', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return new
