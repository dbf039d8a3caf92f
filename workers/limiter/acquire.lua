-- acquire.lua: take tokens from an account's shared rate limiter (GCRA), honouring its cooldown.
--
-- The twin of MemoryStore.acquire and gcra.gcra_step (workers/limiter/); one test table checks both.
--
-- KEYS[1]  dropq:limiter:{account}  string: the theoretical arrival time (TAT), microseconds
-- KEYS[2]  dropq:cooldown:{account} hash: until (ms), strikes            (read only here)
-- KEYS[3]  dropq:rate:{account}     hash: factor (ppm of the rate), at (ms, when it was lowered) (read only)
-- KEYS[4]  dropq:limiter-first:{account} sorted set: first-lane requests waiting for their slot
--                                    (member: the request's id, score: its slot + FIRST_GRACE_MS, ms)
--
-- ARGV[1]  cost                  requests this grant stands for (integer >= 1)
-- ARGV[2]  base_interval_us      emission interval at full rate, safety margin applied
-- ARGV[3]  tolerance_us          how long after its slot opened a request may still use it
-- ARGV[4]  recovery_ppm_per_s    how fast the adaptive factor climbs back to 1e6
-- ARGV[5]  now_ms                optional; empty = the server's clock (TIME). Tests pass it.
-- ARGV[6]  lane                  "first" or "bulk"; anything else: no lane (the limiter alone)
-- ARGV[7]  request id            a first-lane request's id, the same over its retries
--
-- Lanes: a refused first-lane request registers its slot; until that slot has passed (plus
-- FIRST_GRACE_MS for its retry to land), bulk requests are refused, so the slot goes to it rather
-- than to whichever of a crowd of bulk requests asks first. Granted, it leaves the set. Bulk requests
-- take every slot no first-lane request waits for.
--
-- Returns {allowed (1|0), retry_after_ms (0 when allowed), clock_us (the time the decision used)}.
--
-- TTL: KEYS[1] is written only on a grant, with PEXPIRE = time until the TAT is in the past + 1 s;
-- an expired TAT means what an absent one means. KEYS[2] and KEYS[3] are written by feedback.lua.
local PPM = 1000000
-- How long past its slot a first-lane request that waits for it holds bulk requests back (gcra.FIRST_GRACE_MS).
local FIRST_GRACE_MS = 50

local now_us
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now_us = tonumber(ARGV[5]) * 1000
else
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now_ms = math.floor(now_us / 1000)

local function ceil_div(a, b)
  return math.floor((a + b - 1) / b)
end

local until_ms = tonumber(redis.call('HGET', KEYS[2], 'until'))
if until_ms and now_ms < until_ms then
  return {0, until_ms - now_ms, now_us}
end

local factor = PPM
local rate = redis.call('HMGET', KEYS[3], 'factor', 'at')
if rate[1] then
  local elapsed = math.max(0, now_ms - tonumber(rate[2]))
  factor = math.min(PPM, tonumber(rate[1]) + math.floor(elapsed * tonumber(ARGV[4]) / 1000))
end

local lane = ARGV[6] or ''
if lane == 'bulk' or lane == 'first' then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
end
local cost = tonumber(ARGV[1])
local interval_us = ceil_div(tonumber(ARGV[2]) * PPM, factor)
local tolerance_us = tonumber(ARGV[3])

if lane == 'bulk' and redis.call('ZCARD', KEYS[4]) > 0 then
  return {0, math.max(1, ceil_div(interval_us, 1000)), now_us}
end

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
tat = math.max(tat, now_us)
local allow_at = tat - tolerance_us
if now_us < allow_at then
  local wait_ms = ceil_div(allow_at - now_us, 1000)
  if lane == 'first' then
    redis.call('ZADD', KEYS[4], now_ms + wait_ms + FIRST_GRACE_MS, ARGV[7])
    -- Never shortened: the set outlives its latest member (members leave by score, the key by its TTL).
    if redis.call('PTTL', KEYS[4]) < wait_ms + FIRST_GRACE_MS + 1000 then
      redis.call('PEXPIRE', KEYS[4], wait_ms + FIRST_GRACE_MS + 1000)
    end
  end
  return {0, wait_ms, now_us}
end
if lane == 'first' then
  redis.call('ZREM', KEYS[4], ARGV[7])
end

local new_tat = tat + cost * interval_us
-- %d: Lua would print a 16-digit number in %.14g and lose the microseconds.
redis.call('SET', KEYS[1], string.format('%d', new_tat),
  'PX', string.format('%d', ceil_div(new_tat - now_us, 1000) + 1000))
return {1, 0, now_us}
