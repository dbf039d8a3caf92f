-- register_part.lua: count an input part of a job once, and note whether it is the final one.
--
-- A job that is finished (or finishing) takes no new part: its outputs are
-- written. A part it received before is recognised as long as the job's
-- ledger lives (the parts set is its tombstone), so a resend after any delay
-- changes nothing.
--
-- KEYS[1] job ledger hash          dropq:job:{job}
-- KEYS[2] job parts set            dropq:job-parts:{job}
-- KEYS[3] produced parts sorted set dropq:job-produced:{job}  (member "start:end")
-- ARGV[1] part id (its offset)
-- ARGV[2] "1" when this part completes the input
-- ARGV[3] TTL, seconds
-- ARGV[4] end of the part (its offset plus its records): with the final part, the job's input size
-- Returns 1 when the part is new, 0 when it was registered before and is not produced yet (a resent
-- call, or the redelivery of one whose worker died), 2 when it was registered and produced before,
-- -1 when the part is new and the job is finished (nothing is written then).
-- TTL: both keys get ARGV[3].

local state = redis.call('HGET', KEYS[1], 'state')
local new = redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0
if new and (state == 'finished' or state == 'finishing') then
  return -1
end
if new then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'parts_pending', 1)
  if ARGV[2] == '1' then
    redis.call('HSET', KEYS[1], 'final_seen', 1, 'input_end', ARGV[4])
  end
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
if new then
  return 1
end
if state == 'finished' or state == 'finishing' or redis.call('ZSCORE', KEYS[3], ARGV[1] .. ':' .. ARGV[4]) then
  return 2
end
return 0
