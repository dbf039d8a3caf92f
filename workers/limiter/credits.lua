-- credits.lua: may a submit of `cost` credits go now? Refuses while paused; reserves against the daily budget.
--
-- KEYS[1]  dropq:credits-pause:{account}        string (JSON), set while submits are paused for credits (read only)
-- KEYS[2]  dropq:credits-recheck:{account}      string, held by the worker that may re-check the balance (read only)
-- KEYS[3]  dropq:budget:{account}:{YYYY-MM-DD}  integer, credits reserved by submits on that UTC day
--
-- ARGV[1]  cost              credits the submit may be charged (one per record)
-- ARGV[2]  budget            credits allowed per UTC day; empty = no budget (KEYS[3] is then not touched)
-- ARGV[3]  recheck_ms        the re-check interval: the wait while paused when no re-check is scheduled
-- ARGV[4]  until_day_end_ms  milliseconds until the next UTC midnight: the wait when the budget is spent
-- ARGV[5]  budget_ttl_ms     the lifetime of KEYS[3]
--
-- Returns {allowed (1|0), retry_after_ms}. When allowed with a budget, `cost` is added to KEYS[3]
-- (a reservation; CreditGuard.release gives back one whose POST did not happen or was refused).
--
-- TTL: KEYS[3] gets PEXPIRE budget_ttl_ms (two days) on every reservation; nothing else is written.
local cost = tonumber(ARGV[1])

if redis.call('EXISTS', KEYS[1]) == 1 then
  local left = redis.call('PTTL', KEYS[2])
  if left <= 0 then
    left = tonumber(ARGV[3])
  end
  return {0, left}
end

if ARGV[2] ~= '' then
  local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
  if spent + cost > tonumber(ARGV[2]) then
    return {0, tonumber(ARGV[4])}
  end
  redis.call('INCRBY', KEYS[3], cost)
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return {1, 0}
