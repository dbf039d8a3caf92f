-- balance.lua: record an account's credit balance; resume paused submits once it covers what was refused.
--
-- KEYS[1]  dropq:credits:{account}        hash: balance (credits), at_ms (when it was read)
-- KEYS[2]  dropq:credits-pause:{account}  string (JSON {"since_ms", "needed"}), set while paused
--
-- ARGV[1]  balance          credits left (credits_left of an answer, or the free credits endpoint)
-- ARGV[2]  at_ms            when it was read
-- ARGV[3]  balance_ttl_ms   the lifetime of KEYS[1]
-- ARGV[4]  pause_ttl_ms     the pause's lifetime, renewed while the balance still falls short
--
-- Returns 1 when this call ended the pause (its caller logs the resume, once), else 0.
--
-- TTL: KEYS[1] gets PEXPIRE balance_ttl_ms; KEYS[2] gets PEXPIRE pause_ttl_ms while the balance falls short.
local balance = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'balance', ARGV[1], 'at_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])

local pause = redis.call('GET', KEYS[2])
if not pause then
  return 0
end
local needed = tonumber(cjson.decode(pause)['needed']) or 1
if balance >= needed then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
