-- feedback.lua: a 429 came back; start a shared cooldown and lower the adaptive rate, once per episode.
--
-- The twin of MemoryStore.report_429 (workers/limiter/store.py); one test table checks both.
--
-- KEYS[1]  dropq:cooldown:{account} hash: until (ms), strikes (consecutive 429 episodes)
-- KEYS[2]  dropq:rate:{account}     hash: factor (ppm of the configured rate), at (ms, when it was set)
--
-- ARGV[1]  server_wait_ms       optional; empty = none given: exponential backoff with jitter instead
-- ARGV[2]  jitter_ppm           a uniform draw in [0, 1e6], made by the caller (scripts get no good randomness)
-- ARGV[3]  backoff_base_ms      the first cooldown's ceiling
-- ARGV[4]  backoff_cap_ms       the longest cooldown
-- ARGV[5]  strike_reset_ms      a 429 this long after the last cooldown ended counts from 1 again
-- ARGV[6]  decrease_ppm         the factor applied to the adaptive rate
-- ARGV[7]  min_factor_ppm       the adaptive rate's floor
-- ARGV[8]  recovery_ppm_per_s   how fast the adaptive rate climbs back
-- ARGV[9]  now_ms               optional; empty = the server's clock (TIME). Tests pass it.
--
-- A 429 during a cooldown belongs to requests sent before it began: it only extends the cooldown when the
-- server gives a longer wait; no new strike, no second decrease (so a fleet converges instead of collapsing).
--
-- Returns {cooldown_left_ms, strikes, factor_ppm}.
--
-- TTL: KEYS[1] lives until strike_reset_ms after the cooldown ends; KEYS[2] until the factor is back
-- to 1e6, plus 1 s. An expired key means what an absent one means.
local PPM = 1000000

local now_ms
if ARGV[9] ~= nil and ARGV[9] ~= '' then
  now_ms = tonumber(ARGV[9])
else
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local server_wait = tonumber(ARGV[1])
local strike_reset = tonumber(ARGV[5])
local recovery = tonumber(ARGV[8])

local function fmt(n)
  return string.format('%d', n)
end

local function current_factor()
  local rate = redis.call('HMGET', KEYS[2], 'factor', 'at')
  if not rate[1] then
    return PPM
  end
  local elapsed = math.max(0, now_ms - tonumber(rate[2]))
  return math.min(PPM, tonumber(rate[1]) + math.floor(elapsed * recovery / 1000))
end

local cd = redis.call('HMGET', KEYS[1], 'until', 'strikes')
local until_ms = tonumber(cd[1]) or 0
local strikes = tonumber(cd[2]) or 0

if now_ms < until_ms then
  if server_wait then
    until_ms = math.max(until_ms, now_ms + server_wait)
    redis.call('HSET', KEYS[1], 'until', fmt(until_ms), 'strikes', fmt(strikes))
    redis.call('PEXPIRE', KEYS[1], fmt(until_ms - now_ms + strike_reset))
  end
  return {until_ms - now_ms, strikes, current_factor()}
end

if strikes > 0 and now_ms - until_ms < strike_reset then
  strikes = strikes + 1
else
  strikes = 1
end

local wait
if server_wait then
  wait = server_wait
else
  local ceiling = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(strikes - 1, 30))
  local half = math.floor(ceiling / 2)
  wait = ceiling - half + math.floor(half * tonumber(ARGV[2]) / PPM)
end
redis.call('HSET', KEYS[1], 'until', fmt(now_ms + wait), 'strikes', fmt(strikes))
redis.call('PEXPIRE', KEYS[1], fmt(wait + strike_reset))

local factor = math.max(tonumber(ARGV[7]), math.floor(current_factor() * tonumber(ARGV[6]) / PPM))
redis.call('HSET', KEYS[2], 'factor', fmt(factor), 'at', fmt(now_ms))
redis.call('PEXPIRE', KEYS[2], fmt(math.floor(((PPM - factor) * 1000 + recovery - 1) / recovery) + 1000))
return {wait, strikes, factor}
